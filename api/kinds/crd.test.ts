import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildCrd, crdFileName, renderCrdFiles } from './crd.js';
import { KINDS } from './kinds.js';

const CRD_DIR = join(process.cwd(), 'crds');

type SchemaNode = Record<string, unknown>;

/** Walks every sub-schema with its path, the way the API server's structural-schema check does. */
function walk(node: SchemaNode, path: string, visit: (node: SchemaNode, path: string) => void): void {
  visit(node, path);
  const properties = (node.properties ?? {}) as Record<string, SchemaNode>;
  for (const [name, child] of Object.entries(properties)) walk(child, `${path}.${name}`, visit);
  if (node.items) walk(node.items as SchemaNode, `${path}[]`, visit);
}

describe('crds/', () => {
  test('matches the API source of truth (run `npm run generate` after changing api/kinds)', async () => {
    const files = await readdir(CRD_DIR);
    const expected = renderCrdFiles();
    expect(files.sort()).toEqual([...expected.keys()].sort());
    for (const [name, content] of expected) {
      expect(await readFile(join(CRD_DIR, name), 'utf8')).toBe(content);
    }
  });

  test.each(KINDS.map((definition) => [definition.kind, definition] as const))('%s CRD is a structural schema', (_kind, definition) => {
    const crd = buildCrd(definition);
    const version = (crd.spec.versions as SchemaNode[])[0]!;
    const root = (version.schema as { openAPIV3Schema: SchemaNode }).openAPIV3Schema;
    const problems: string[] = [];
    walk(root, '', (node, path) => {
      if (typeof node.type !== 'string') problems.push(`${path}: no type`);
      if (node.properties && node.additionalProperties !== undefined) problems.push(`${path}: properties with additionalProperties`);
      for (const forbidden of ['$ref', 'anyOf', 'oneOf', 'allOf', 'const']) {
        if (forbidden in node) problems.push(`${path}: ${forbidden} is not allowed in a structural schema`);
      }
      const required = (node.required ?? []) as string[];
      const properties = (node.properties ?? {}) as Record<string, SchemaNode>;
      for (const name of required) {
        if (!(name in properties)) problems.push(`${path}: requires unknown ${name}`);
        else if ('default' in properties[name]!) problems.push(`${path}.${name}: required field with a default`);
      }
      if (path !== '' && path !== '.metadata' && typeof node.description !== 'string' && node.type === 'object') {
        problems.push(`${path}: object without description (kubectl explain shows nothing)`);
      }
    });
    expect(problems).toEqual([]);
  });

  test.each(KINDS.map((definition) => [definition.kind, definition] as const))('%s has status subresource, categories, short names and printer columns over real fields', (_kind, definition) => {
    const crd = buildCrd(definition);
    const spec = crd.spec as { names: SchemaNode; versions: SchemaNode[] };
    expect(spec.names.categories).toEqual(['gatehouse']);
    expect((spec.names.shortNames as string[]).length).toBeGreaterThan(0);
    const version = spec.versions[0]!;
    expect(version.subresources).toEqual({ status: {} });
    const root = (version.schema as { openAPIV3Schema: SchemaNode }).openAPIV3Schema;
    for (const column of version.additionalPrinterColumns as { jsonPath: string }[]) {
      // .spec.a.b or .status.conditions[?(...)].status: every plain segment must be a declared property.
      const segments = column.jsonPath.replace(/\[[^\]]*\]/g, '').split('.').filter(Boolean);
      let node: SchemaNode | undefined = root;
      for (const segment of segments) {
        if (segment === 'metadata') break;
        const next: SchemaNode | undefined = (node?.properties as Record<string, SchemaNode> | undefined)?.[segment] ?? (node?.items as SchemaNode | undefined)?.properties?.[segment as never];
        expect(next).toBeDefined();
        node = next;
      }
    }
  });

  test('file names follow group_plural.yaml', () => {
    expect(KINDS.map(crdFileName)).toEqual([
      'gatehouse.dev_nonhumanidentities.yaml',
      'gatehouse.dev_protectedresources.yaml',
      'gatehouse.dev_accesspolicies.yaml',
      'gatehouse.dev_accessrequests.yaml',
    ]);
  });

  test('generated YAML parses back to the built object', async () => {
    for (const definition of KINDS) {
      const text = await readFile(join(CRD_DIR, crdFileName(definition)), 'utf8');
      expect(parse(text)).toEqual(JSON.parse(JSON.stringify(buildCrd(definition))));
    }
  });
});
