import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';

const TESTDATA = join(process.cwd(), 'api', 'manifests', 'testdata');

async function validate(...args: string[]) {
  const io = bufferedIO(TESTDATA);
  const code = await runCli(['validate', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

describe('gatehouse validate', () => {
  test('a clean folder: the summary only, exit 0', async () => {
    const result = await validate('clean');
    expect(result).toEqual({ code: 0, out: 'validated 13 objects in 10 files: 0 errors, 0 warnings\n', err: '' });
  });

  test('a broken folder: one line per problem with file, line, object, field, message and code; exit 1', async () => {
    const { code, out } = await validate('broken');
    expect(code).toBe(1);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines[0]).toBe(
      'broken/broken-yaml.yaml:7  -  -  YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]. Fix the YAML so it parses.  [GH_ERR_MANIFEST_YAML]',
    );
    expect(lines[3]).toBe('broken/policy.yaml:12  AccessPolicy/default/ci-orders  spec.rules[0].tabels  unknown field "tabels"; did you mean "tables"?  [GH_ERR_MANIFEST_SCHEMA]');
    expect(lines[4]).toMatch(/^broken\/policy\.yaml:19 {2}AccessPolicy\/default\/ci-writes {2}spec\.subjects\[1\]\.group {2}warning: No NonHumanIdentity .* {2}\[GH_ERR_REF_EMPTY_GROUP\]$/);
    expect(lines[7]).toBe('validated 5 objects in 4 files: 6 errors, 1 warning');
  });

  test('--json prints the problems and counts as JSON', async () => {
    const { code, out } = await validate('broken', '--json');
    expect(code).toBe(1);
    const report = JSON.parse(out) as { objects: number; files: number; errors: number; warnings: number; problems: Record<string, unknown>[] };
    expect(report).toMatchObject({ objects: 5, files: 4, errors: 6, warnings: 1 });
    expect(report.problems).toHaveLength(7);
    expect(report.problems[5]).toEqual({
      code: 'GH_ERR_TTL_ABOVE_MAXIMUM',
      severity: 'error',
      message: 'credentialTTL 1h exceeds maxCredentialTTL 15m of identity ci-runner; lower the TTL or raise the identity maximum.',
      file: 'broken/policy.yaml',
      line: 21,
      kind: 'AccessPolicy',
      namespace: 'default',
      name: 'ci-writes',
      path: 'spec.credentialTTL',
    });
    expect(report.problems[4]).toMatchObject({ code: 'GH_ERR_REF_EMPTY_GROUP', severity: 'warning' });
  });

  test('warnings alone still exit 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-validate-'));
    try {
      await cp(join(TESTDATA, 'clean'), dir, { recursive: true });
      const policy = [
        'apiVersion: gatehouse.dev/v1alpha1',
        'kind: AccessPolicy',
        'metadata: {name: dbas, namespace: payments}',
        'spec:',
        '  subjects: [{group: dba}]',
        '  resources: [orders-db]',
        '  rules: [{effect: allow, operations: [read]}]',
        '',
      ].join('\n');
      await writeFile(join(dir, 'dbas.yaml'), policy);
      const io = bufferedIO();
      const code = await runCli(['validate', dir], io);
      expect(code).toBe(0);
      expect(io.out()).toContain('warning: No NonHumanIdentity in namespace payments lists group dba');
      expect(io.out()).toContain('validated 14 objects in 11 files: 0 errors, 1 warning\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('without DIR: usage error, exit 2', async () => {
    const { code, out, err } = await validate();
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toContain('error GH_ERR_USAGE: validate needs the folder of manifests to check');
  });

  test('with two folders or an unknown option: usage error, exit 2', async () => {
    expect((await validate('clean', 'broken')).code).toBe(2);
    const unknown = await validate('clean', '--jsn');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("Unknown option '--jsn'");
  });

  test('a folder that does not exist: a clear error, exit 1', async () => {
    const { code, out, err } = await validate('no-such-folder');
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain('error GH_ERR_CONFIG_DIR_NOT_FOUND');
    expect(err).toContain('no-such-folder');
  });

  test('is listed in gatehouse --help', async () => {
    const io = bufferedIO();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.out()).toContain('gatehouse validate DIR [--json]');
  });
});
