// The real kubectl (v1.34) against the loopback API server: CRDs and the sample GitOps folder applied,
// reads with selectors, every patch type, server-side apply, schema rejection and deletion.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';
import { kubeTools, REPO_ROOT, type KubeTools } from './kubectl-runner.js';
import { silentLogger } from '../../api/logging/logger.js';

let server: LoopbackApiServer;
let tools: KubeTools;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server, { namespace: 'payments' });
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
});

async function kubectl(...args: string[]): Promise<string> {
  const result = await tools.kubectl(args);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

async function getJson(...args: string[]): Promise<Record<string, any>> {
  return JSON.parse(await kubectl('get', ...args, '-o', 'json')) as Record<string, any>;
}

const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: payments, labels: {team: payments}}\n';

describe('kubectl against the loopback API server', () => {
  it('applies the CRDs, then the sample folder, and serves the Gatehouse kinds with their short names and category', async () => {
    const crds = await kubectl('apply', '-f', 'crds/');
    expect(crds).toContain('customresourcedefinition.apiextensions.k8s.io/accesspolicies.gatehouse.dev created');
    expect((await tools.kubectl(['apply', '-f', '-'], NAMESPACE)).code).toBe(0);
    const applied = await tools.kubectl(['apply', '-R', '-f', 'config/samples/identities', '-f', 'config/samples/policies', '-f', 'config/samples/resources', '-f', 'config/samples/secrets']);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain('accesspolicy.gatehouse.dev/ci-read-only created');
    expect(applied.stdout).toContain('secret/orders-db-admin created');
    const all = await kubectl('get', 'gatehouse', '-A', '-o', 'name');
    expect(all.split('\n').filter((line) => line !== '').sort()).toEqual(expect.arrayContaining([
      'accesspolicy.gatehouse.dev/ci-read-only', 'nonhumanidentity.gatehouse.dev/ci-runner', 'protectedresource.gatehouse.dev/orders-db',
    ]));
    // Secrets' stringData is folded into base64 data, as the real server does.
    const secret = await getJson('secret', 'orders-db-admin');
    expect(secret.stringData).toBeUndefined();
    const sample = parse(await readFile(join(REPO_ROOT, 'config', 'samples', 'secrets', 'orders-db-admin.yaml'), 'utf8')) as { stringData: { username: string } };
    expect(Buffer.from(secret.data.username, 'base64').toString()).toBe(sample.stringData.username);
    const policy = await getJson('ap', 'ci-read-only');
    expect(policy.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(policy.metadata.generation).toBe(1);
    expect(Number(policy.metadata.resourceVersion)).toBeGreaterThan(0);
    // Applying the same folder again changes nothing.
    const again = await kubectl('apply', '-f', 'config/samples/policies');
    expect(again).toContain('accesspolicy.gatehouse.dev/ci-read-only unchanged');
    expect((await getJson('ap', 'ci-read-only')).metadata.resourceVersion).toBe(policy.metadata.resourceVersion);
  });

  it('prints the CRD printer columns through server-side Tables', async () => {
    // The expected columns come from the CRD itself, so this holds as the CRDs evolve.
    const crd = parse(await readFile(join(REPO_ROOT, 'crds', 'gatehouse.dev_accesspolicies.yaml'), 'utf8')) as {
      spec: { versions: Array<{ additionalPrinterColumns: Array<{ name: string; priority?: number }> }> };
    };
    const columns = crd.spec.versions[0].additionalPrinterColumns.filter((column) => (column.priority ?? 0) === 0).map((column) => column.name.toUpperCase());
    const table = await kubectl('get', 'ap', 'ci-read-only');
    const [header, row] = table.trim().split('\n');
    expect(header.split(/\s+/)).toEqual(['NAME', ...columns]);
    expect(row).toMatch(/^ci-read-only\s+ci-runner\s/);
    expect(row).toMatch(/\s\d+s$/);
  });

  it('explains CRD fields from the served OpenAPI v3 schema', async () => {
    const explained = await kubectl('explain', 'accesspolicy.spec.rules.effect');
    expect(explained).toContain('KIND:       AccessPolicy');
    expect(explained).toMatch(/FIELD:\s+effect <string>/);
    expect(explained).toMatch(/ENUM:\s+allow\s+require-approval\s+deny/);
  });

  it('lists with label selectors of every operator', async () => {
    for (const [name, tier] of [['a', 'db'], ['b', 'web'], ['c', 'cache']]) {
      await kubectl('create', 'configmap', `sel-${name}`, '--from-literal=k=v', '--dry-run=client', '-o', 'yaml').then((yaml) =>
        tools.kubectl(['apply', '-f', '-'], yaml.replace('metadata:', `metadata:\n  labels: {tier: ${tier}, sel: "yes"}`)));
    }
    const names = async (selector: string): Promise<string[]> =>
      (await getJson('configmaps', '-l', selector)).items.map((item: { metadata: { name: string } }) => item.metadata.name).sort();
    expect(await names('tier=db')).toEqual(['sel-a']);
    expect(await names('sel=yes,tier!=db')).toEqual(['sel-b', 'sel-c']);
    expect(await names('tier in (web,cache)')).toEqual(['sel-b', 'sel-c']);
    expect(await names('sel,tier notin (web)')).toEqual(['sel-a', 'sel-c']);
    expect(await names('!sel')).toEqual([]);
    expect((await getJson('configmaps', '--field-selector', 'metadata.name=sel-b')).items).toHaveLength(1);
  });

  it('patches with json, merge and strategic patches, bumping generation only for spec changes', async () => {
    await kubectl('patch', 'pres', 'orders-db', '--type', 'merge', '-p', '{"spec":{"database":"orders2"}}');
    let resource = await getJson('pres', 'orders-db');
    expect(resource.spec.database).toBe('orders2');
    expect(resource.metadata.generation).toBe(2);
    await kubectl('patch', 'pres', 'orders-db', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/sidecar/port","value":15433}]');
    resource = await getJson('pres', 'orders-db');
    expect(resource.spec.sidecar.port).toBe(15433);
    expect(resource.metadata.generation).toBe(3);
    await kubectl('label', 'pres', 'orders-db', 'tier=gold');
    resource = await getJson('pres', 'orders-db');
    expect(resource.metadata.labels.tier).toBe('gold');
    expect(resource.metadata.generation).toBe(3);

    const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: orders}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: orders:1
        env: [{name: A, value: "1"}]
`;
    expect((await tools.kubectl(['apply', '-f', '-'], deployment)).code).toBe(0);
    await kubectl('patch', 'deployment', 'orders', '--type', 'strategic', '-p',
      '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"gatehouse:1"},{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}');
    const patched = await getJson('deployment', 'orders');
    const containers = patched.spec.template.spec.containers as Array<{ name: string; image: string; env?: Array<{ name: string }> }>;
    expect(containers.map((container) => container.name)).toEqual(['app', 'sidecar']);
    expect(containers[0].image).toBe('orders:1');
    expect(containers[0].env!.map((env) => env.name)).toEqual(['A', 'B']);
    // Client-side apply of a changed manifest computes a three-way strategic patch.
    expect((await tools.kubectl(['apply', '-f', '-'], deployment.replace('orders:1', 'orders:2'))).code).toBe(0);
    const reapplied = await getJson('deployment', 'orders');
    expect(reapplied.spec.template.spec.containers.find((container: { name: string }) => container.name === 'app').image).toBe('orders:2');
  });

  it('applies server-side, creating and then updating, with managedFields for the manager', async () => {
    const manifest = (value: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, labels: {a: "1"}}\ndata: {key: "${value}"}\n`;
    const created = await tools.kubectl(['apply', '--server-side', '--field-manager', 'gitops', '-f', '-'], manifest('one'));
    expect(created.stdout).toContain('configmap/ssa serverside-applied');
    const updated = await tools.kubectl(['apply', '--server-side', '--field-manager', 'gitops', '-f', '-'], manifest('two'));
    expect(updated.code).toBe(0);
    const configMap = await getJson('configmap', 'ssa', '--show-managed-fields');
    expect(configMap.data.key).toBe('two');
    const entry = configMap.metadata.managedFields.find((field: { manager: string }) => field.manager === 'gitops');
    expect(entry).toMatchObject({ operation: 'Apply', fieldsType: 'FieldsV1' });
    expect(entry.fieldsV1['f:data']).toEqual({ 'f:key': {} });
    // A field the manager stops applying goes, unless another manager also set it.
    await kubectl('annotate', 'configmap', 'ssa', 'kept=by-kubectl');
    const shrunk = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, annotations: {kept: by-kubectl}}\ndata: {other: "x"}\n`;
    expect((await tools.kubectl(['apply', '--server-side', '--field-manager', 'gitops', '-f', '-'], shrunk)).code).toBe(0);
    const after = await getJson('configmap', 'ssa');
    expect(after.data).toEqual({ other: 'x' });
    expect(after.metadata.labels).toBeUndefined();
    expect(after.metadata.annotations.kept).toBe('by-kubectl');
  });

  it('rejects objects that break the CRD schema with the field causes, and unknown fields under --validate=strict', async () => {
    const bad = 'apiVersion: gatehouse.dev/v1alpha1\nkind: ProtectedResource\nmetadata: {name: bad}\nspec: {protocol: gopher}\n';
    const rejected = await tools.kubectl(['apply', '-f', '-'], bad);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('The ProtectedResource "bad" is invalid');
    expect(rejected.stderr).toContain('spec.protocol: Unsupported value: "gopher"');
    expect(rejected.stderr).toContain('spec.address: Required value');

    const resource = await getJson('pres', 'orders-db');
    const unknown = JSON.stringify({ apiVersion: 'gatehouse.dev/v1alpha1', kind: 'ProtectedResource', metadata: { name: 'extra' }, spec: { ...resource.spec, color: 'blue' } });
    const strict = await tools.kubectl(['apply', '--validate=strict', '-f', '-'], unknown);
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toContain('unknown field "spec.color"');
    const warned = await tools.kubectl(['apply', '--validate=warn', '--dry-run=server', '-f', '-'], unknown);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('unknown field "spec.color"');
    const lax = await tools.kubectl(['apply', '--validate=false', '-f', '-'], unknown);
    expect(lax.code).toBe(0);
    expect((await getJson('pres', 'extra')).spec.color).toBeUndefined();
  });

  it('deletes, and reports NotFound afterwards as the real server does', async () => {
    expect(await kubectl('delete', 'pres', 'extra')).toContain('protectedresource.gatehouse.dev "extra" deleted');
    const missing = await tools.kubectl(['get', 'pres', 'extra']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('Error from server (NotFound): protectedresources.gatehouse.dev "extra" not found');
  });

  it('refuses creates in namespaces that do not exist', async () => {
    const result = await tools.kubectl(['apply', '-n', 'nowhere', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('namespaces "nowhere" not found');
  });
});
