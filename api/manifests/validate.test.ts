import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.js';
import { loadConfigDir, loadConfigFromTexts, type ConfigProblem, type ManifestText } from './config.js';
import { validateConfig } from './validate.js';

const TESTDATA = join(process.cwd(), 'api', 'manifests', 'testdata');
const CLEAN_DIR = join(TESTDATA, 'clean');

let clean: ManifestText[];

beforeAll(async () => {
  const files = (await readdir(CLEAN_DIR, { recursive: true })).filter((file) => file.endsWith('.yaml')).sort();
  clean = await Promise.all(files.map(async (file) => ({ file, text: await readFile(join(CLEAN_DIR, file), 'utf8') })));
});

/** The clean folder with `files` added (or replacing clean files of the same name), validated. */
function validateWith(files: Record<string, string>): ConfigProblem[] {
  const kept = clean.filter((text) => !(text.file in files));
  const added = Object.entries(files).map(([file, text]) => ({ file, text }));
  return validateConfig(loadConfigFromTexts([...kept, ...added]));
}

/** Strips the indentation of a template literal so YAML can sit indented in the test. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indent = Math.min(...text.split('\n').filter((line) => line.trim()).map((line) => /^ */.exec(line)![0].length));
  return text
    .split('\n')
    .map((line) => line.slice(indent))
    .join('\n');
}

/** 1-based number of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`${needle} is not in the text`);
  return index + 1;
}

interface Expected {
  code: ErrorCode;
  file: string;
  line: number;
  path: string;
  name?: string;
  kind?: string;
  severity?: 'warning';
}

/** The one problem found, as expected: one mistake must not cascade into others. */
function expectOnly(problems: ConfigProblem[], expected: Expected): ConfigProblem {
  expect(problems.map(({ code, path }) => `${code} ${path}`)).toEqual([`${expected.code} ${expected.path}`]);
  const [problem] = problems;
  expect(problem).toMatchObject(expected);
  expect(problem!.severity).toBe(expected.severity);
  expect(problem!.message).not.toMatch(/\{\w+\}/); // every placeholder filled
  return problem!;
}

const HEADER = 'apiVersion: gatehouse.dev/v1alpha1';

function policy(name: string, spec: string): string {
  return `${HEADER}\nkind: AccessPolicy\nmetadata:\n  name: ${name}\n  namespace: payments\nspec:\n${spec}`;
}

function resource(name: string, spec: string): string {
  return `${HEADER}\nkind: ProtectedResource\nmetadata:\n  name: ${name}\n  namespace: payments\nspec:\n${spec}`;
}

function identity(name: string, spec: string): string {
  return `${HEADER}\nkind: NonHumanIdentity\nmetadata:\n  name: ${name}\n  namespace: payments\nspec:\n${spec}`;
}

describe('validateConfig on a clean folder', () => {
  test('a realistic GitOps folder has no problems at all', async () => {
    const config = await loadConfigDir(CLEAN_DIR);
    expect(validateConfig(config)).toEqual([]);
    expect(config.identities).toHaveLength(4);
    expect(config.resources).toHaveLength(3);
    expect(config.policies).toHaveLength(3);
    expect(config.secrets).toHaveLength(3);
  });

  test('the same objects in the default namespace, without namespace fields, are clean too', () => {
    const texts = clean.map(({ file, text }) => ({ file, text: text.replace(/^ {2}namespace: payments\n/gm, '') }));
    expect(validateConfig(loadConfigFromTexts(texts))).toEqual([]);
  });
});

describe('validateConfig: the manifest itself', () => {
  test('YAML syntax error', () => {
    const text = yaml`
      ${HEADER}
      kind: AccessPolicy
      metadata: {name: half-written}
      spec:
        resources: [orders-db
        rules: []
    `;
    expectOnly(validateWith({ 'broken.yaml': text }), { code: 'GH_ERR_MANIFEST_YAML', file: 'broken.yaml', line: lineOf(text, 'rules: []'), path: '' });
  });

  test('a document that is not an object', () => {
    const text = `${identity('extra', '  serviceAccountName: extra\n')}\n---\n- just\n- a list\n`;
    expectOnly(validateWith({ 'list.yaml': text }), { code: 'GH_ERR_MANIFEST_NOT_OBJECT', file: 'list.yaml', line: lineOf(text, '- just'), path: '' });
  });

  test('an unknown kind in gatehouse.dev', () => {
    const text = policy('typo', '  rules: []\n').replace('kind: AccessPolicy', 'kind: AccessPolcy');
    expectOnly(validateWith({ 'kind.yaml': text }), {
      code: 'GH_ERR_MANIFEST_UNKNOWN_KIND',
      file: 'kind.yaml',
      line: lineOf(text, 'kind: AccessPolcy'),
      path: 'kind',
      name: 'typo',
    });
  });

  test('an apiVersion gatehouse.dev does not serve', () => {
    const text = identity('old', '  serviceAccountName: old\n').replace('v1alpha1', 'v1beta1');
    expectOnly(validateWith({ 'old.yaml': text }), { code: 'GH_ERR_MANIFEST_API_VERSION', file: 'old.yaml', line: 1, path: 'apiVersion', name: 'old' });
  });

  test('a Gatehouse kind under a mistyped group is a warning, not silently skipped', () => {
    const text = identity('elsewhere', '  serviceAccountName: elsewhere\n').replace('gatehouse.dev', 'gatehouse.io');
    const problem = expectOnly(validateWith({ 'group.yaml': text }), {
      code: 'GH_ERR_MANIFEST_API_VERSION',
      file: 'group.yaml',
      line: 1,
      path: 'apiVersion',
      name: 'elsewhere',
      severity: 'warning',
    });
    expect(problem.message).toContain('gatehouse.dev/v1alpha1');
  });

  test('missing metadata.name', () => {
    const text = yaml`
      ${HEADER}
      kind: NonHumanIdentity
      metadata:
        namespace: payments
      spec: {serviceAccountName: nameless}
    `;
    expectOnly(validateWith({ 'nameless.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'nameless.yaml',
      line: lineOf(text, 'metadata:'),
      path: 'metadata.name',
      kind: 'NonHumanIdentity',
    });
  });

  test('an object name with uppercase letters', () => {
    const text = identity('Nightly-Job', '  serviceAccountName: nightly\n');
    const problem = expectOnly(validateWith({ 'nightly.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'nightly.yaml',
      line: lineOf(text, 'name: Nightly-Job'),
      path: 'metadata.name',
      name: 'Nightly-Job',
    });
    expect(problem.message).toContain('lowercase');
  });

  test('an unknown field (a typo) names the field it probably meant', () => {
    const text = policy('typo', yaml`
      subjects: [{identity: ci-runner}]
      resources: [orders-db]
      rules:
        - effect: allow
          operations: [read]
          tabels: [orders]
    `.replace(/^/gm, '  '));
    const problem = expectOnly(validateWith({ 'typo.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'typo.yaml',
      line: lineOf(text, 'tabels'),
      path: 'spec.rules[0].tabels',
      name: 'typo',
    });
    expect(problem.message).toContain('did you mean "tables"');
  });

  test('a field of the wrong type', () => {
    const text = policy('scalar', '  subjects: [{identity: ci-runner}]\n  resources: orders-db\n  rules: [{effect: allow}]\n');
    const problem = expectOnly(validateWith({ 'scalar.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'scalar.yaml',
      line: lineOf(text, 'resources: orders-db'),
      path: 'spec.resources',
    });
    expect(problem.message).toBe('must be of type array, got string');
  });

  test('an effect that is not one of allow, require-approval, deny', () => {
    const text = policy('alow', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules:\n    - effect: alow\n');
    const problem = expectOnly(validateWith({ 'alow.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'alow.yaml',
      line: lineOf(text, 'effect: alow'),
      path: 'spec.rules[0].effect',
    });
    expect(problem.message).toContain('allow, require-approval, deny');
  });

  test('an operation that does not exist', () => {
    const text = policy('selct', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules:\n    - effect: allow\n      operations: [read, selct]\n');
    expectOnly(validateWith({ 'selct.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'selct.yaml',
      line: lineOf(text, 'selct]'),
      path: 'spec.rules[0].operations[1]',
    });
  });

  test('a duration that does not parse', () => {
    const text = policy('ttl', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  credentialTTL: 10 minutes\n  rules: [{effect: allow}]\n');
    const problem = expectOnly(validateWith({ 'ttl.yaml': text }), {
      code: 'GH_ERR_BAD_DURATION',
      file: 'ttl.yaml',
      line: lineOf(text, 'credentialTTL'),
      path: 'spec.credentialTTL',
    });
    expect(problem.message).toContain('"10 minutes"');
  });

  test('a sidecar port below 1024', () => {
    const text = resource('cache', '  protocol: tcp\n  address: cache.payments.svc:6379\n  credentials: {strategy: none}\n  sidecar: {port: 80}\n');
    expectOnly(validateWith({ 'cache.yaml': text }), { code: 'GH_ERR_MANIFEST_SCHEMA', file: 'cache.yaml', line: lineOf(text, 'port: 80'), path: 'spec.sidecar.port' });
  });

  test('empty subjects', () => {
    const text = policy('nobody', '  subjects: []\n  resources: [orders-db]\n  rules: [{effect: allow}]\n');
    expectOnly(validateWith({ 'nobody.yaml': text }), { code: 'GH_ERR_MANIFEST_SCHEMA', file: 'nobody.yaml', line: lineOf(text, 'subjects'), path: 'spec.subjects' });
  });

  test('a repeated value in a list the API server treats as a set', () => {
    const text = policy('twice', '  subjects: [{identity: ci-runner}]\n  resources:\n    - orders-db\n    - reports-db\n    - orders-db\n  rules: [{effect: allow}]\n');
    expectOnly(validateWith({ 'twice.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'twice.yaml',
      line: lineOf(text, 'reports-db') + 1,
      path: 'spec.resources[2]',
    });
  });

  test('Secret data that is not base64 is reported once, not again as a missing Secret', () => {
    const original = clean.find((text) => text.file === 'secrets.yaml')!.text;
    const text = original.replace('stringData:\n  username: gatehouse_admin\n  password: s3cret-for-tests-only', 'data:\n  username: YWRtaW4=\n  password: p@ss!');
    expect(text).not.toBe(original);
    expectOnly(validateWith({ 'secrets.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'secrets.yaml',
      line: lineOf(text, 'password: p@ss!'),
      path: 'data.password',
      kind: 'Secret',
      name: 'orders-db-admin',
    });
  });

  test('the same object twice', () => {
    const text = identity('ci-runner', '  serviceAccountName: ci-runner-2\n');
    const problem = expectOnly(validateWith({ 'zz-copy.yaml': text }), {
      code: 'GH_ERR_MANIFEST_DUPLICATE',
      file: 'zz-copy.yaml',
      line: lineOf(text, 'name: ci-runner'),
      path: 'metadata.name',
      name: 'ci-runner',
    });
    expect(problem.message).toContain('identities/ci.yaml:2');
  });

  test('an object with schema problems does not also break the references to it', () => {
    const text = resource('orders-db', '  protocol: postgress\n  address: orders-db.payments.svc:5432\n  credentials: {strategy: none}\n  sidecar: {port: 15432}\n');
    expectOnly(validateWith({ 'resources/orders-db.yaml': text }), {
      code: 'GH_ERR_MANIFEST_SCHEMA',
      file: 'resources/orders-db.yaml',
      line: lineOf(text, 'postgress'),
      path: 'spec.protocol',
    });
  });
});

describe('validateConfig: CEL rules the API server enforces', () => {
  test('an identity with neither serviceAccountName nor oidc', () => {
    const text = identity('ghost', '  groups: [ci]\n');
    const problem = expectOnly(validateWith({ 'ghost.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'ghost.yaml', line: lineOf(text, 'spec:'), path: 'spec', name: 'ghost' });
    expect(problem.message).toContain('set serviceAccountName, oidc, or both');
  });

  test('verify-full without a CA', () => {
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  tls: {mode: verify-full}\n  credentials: {strategy: none}\n  sidecar: {port: 15433}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'ledger.yaml', line: lineOf(text, 'verify-full'), path: 'spec.tls.mode' });
  });

  test('static credentials without secretRef', () => {
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  credentials:\n    strategy: static\n  sidecar: {port: 15433}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'ledger.yaml', line: lineOf(text, 'strategy: static'), path: 'spec.credentials.strategy' });
  });

  test('an http resource with a host:port address', () => {
    const text = resource('ledger-api', '  protocol: http\n  address: ledger.payments.svc:8080\n  credentials: {strategy: none}\n  sidecar: {port: 18081}\n');
    const problem = expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'ledger.yaml', line: lineOf(text, 'address'), path: 'spec.address' });
    expect(problem.message).toContain('http resources need a URL address');
  });

  test('postgres-dynamic credentials on a mysql resource', () => {
    const text = resource('ledger-db', '  protocol: mysql\n  address: ledger.payments.svc:3306\n  credentials:\n    strategy: postgres-dynamic\n    secretRef: {name: reports-db-reader}\n  sidecar: {port: 13307}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'ledger.yaml', line: lineOf(text, 'postgres-dynamic'), path: 'spec.credentials.strategy' });
  });

  test('a subject with both identity and group', () => {
    const text = policy('both', '  subjects:\n    - {identity: ci-runner, group: ci}\n  resources: [orders-db]\n  rules: [{effect: allow, operations: [read]}]\n');
    expectOnly(validateWith({ 'both.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'both.yaml', line: lineOf(text, '{identity: ci-runner, group: ci}'), path: 'spec.subjects[0]' });
  });

  test('require-approval without approval settings', () => {
    const text = policy('held', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules:\n    - effect: require-approval\n      operations: [write]\n');
    expectOnly(validateWith({ 'held.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'held.yaml', line: lineOf(text, 'require-approval'), path: 'spec.rules[0].effect' });
  });

  test('approval settings on an allow rule', () => {
    const text = policy('odd', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules:\n    - effect: allow\n      approval:\n        approvers: {groups: [dba]}\n');
    expectOnly(validateWith({ 'odd.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'odd.yaml', line: lineOf(text, 'approval:'), path: 'spec.rules[0].approval' });
  });

  test('a masking rule with neither columns nor detectors', () => {
    const text = policy('mask', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules: [{effect: allow, operations: [read]}]\n  masking:\n    - strategy: hash\n');
    expectOnly(validateWith({ 'mask.yaml': text }), { code: 'GH_ERR_CEL_RULE', file: 'mask.yaml', line: lineOf(text, 'strategy: hash'), path: 'spec.masking[0]' });
  });
});

describe('validateConfig: references', () => {
  test('a policy naming a resource that does not exist', () => {
    const text = policy('ghosts', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db, ledger-db]\n  rules: [{effect: allow, operations: [read]}]\n');
    const problem = expectOnly(validateWith({ 'ghosts.yaml': text }), {
      code: 'GH_ERR_REF_UNKNOWN_RESOURCE',
      file: 'ghosts.yaml',
      line: lineOf(text, 'ledger-db'),
      path: 'spec.resources[1]',
      name: 'ghosts',
    });
    expect(problem.message).toContain('ledger-db');
  });

  test('a policy naming an identity that does not exist', () => {
    const text = policy('ghosts', '  subjects:\n    - identity: ci-runer\n  resources: [orders-db]\n  rules: [{effect: allow, operations: [read]}]\n');
    expectOnly(validateWith({ 'ghosts.yaml': text }), {
      code: 'GH_ERR_REF_UNKNOWN_IDENTITY',
      file: 'ghosts.yaml',
      line: lineOf(text, 'ci-runer'),
      path: 'spec.subjects[0].identity',
      name: 'ghosts',
    });
  });

  test('a reference to an object in another namespace says where it is', () => {
    const text = policy('ghosts', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules: [{effect: allow, operations: [read]}]\n').replace('namespace: payments', 'namespace: default');
    const problems = validateWith({ 'ghosts.yaml': text });
    expect(problems.map((problem) => `${problem.code} ${problem.path}`)).toEqual([
      'GH_ERR_REF_OTHER_NAMESPACE spec.subjects[0].identity',
      'GH_ERR_REF_OTHER_NAMESPACE spec.resources[0]',
    ]);
    expect(problems[1]).toMatchObject({ file: 'ghosts.yaml', line: lineOf(text, 'resources'), namespace: 'default' });
    expect(problems[1]!.message).toContain('is in namespace payments, not default');
  });

  test('a group subject no identity belongs to is a warning', () => {
    const text = policy('dbas', '  subjects:\n    - group: dba\n  resources: [orders-db]\n  rules: [{effect: allow, operations: [read]}]\n');
    expectOnly(validateWith({ 'dbas.yaml': text }), {
      code: 'GH_ERR_REF_EMPTY_GROUP',
      file: 'dbas.yaml',
      line: lineOf(text, 'group: dba'),
      path: 'spec.subjects[0].group',
      severity: 'warning',
    });
  });

  test('a credentials Secret that does not exist', () => {
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  credentials:\n    strategy: static\n    secretRef: {name: ledger-admin}\n  sidecar: {port: 15433}\n');
    const problem = expectOnly(validateWith({ 'ledger.yaml': text }), {
      code: 'GH_ERR_REF_UNKNOWN_SECRET',
      file: 'ledger.yaml',
      line: lineOf(text, 'ledger-admin'),
      path: 'spec.credentials.secretRef.name',
      name: 'ledger-db',
    });
    expect(problem.message).toContain('strategy static');
  });

  test('a credentials Secret without a password', () => {
    const secret = 'apiVersion: v1\nkind: Secret\nmetadata: {name: ledger-admin, namespace: payments}\nstringData: {username: ledger}\n';
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  credentials:\n    strategy: postgres-dynamic\n    secretRef: {name: ledger-admin}\n  sidecar: {port: 15433}\n');
    const problem = expectOnly(validateWith({ 'ledger.yaml': `${text}---\n${secret}` }), {
      code: 'GH_ERR_REF_SECRET_KEYS',
      file: 'ledger.yaml',
      line: lineOf(text, 'ledger-admin'),
      path: 'spec.credentials.secretRef.name',
    });
    expect(problem.message).toContain('lacks key(s) password');
  });

  test('a CA Secret that does not exist', () => {
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  tls:\n    mode: verify-full\n    caSecretRef: {name: ledger-ca}\n  credentials: {strategy: none}\n  sidecar: {port: 15433}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_REF_UNKNOWN_CA_SECRET', file: 'ledger.yaml', line: lineOf(text, 'ledger-ca'), path: 'spec.tls.caSecretRef.name' });
  });

  test('a CA Secret without the key caSecretRef names', () => {
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  tls:\n    mode: verify-full\n    caSecretRef: {name: orders-db-ca, key: bundle.pem}\n  credentials: {strategy: none}\n  sidecar: {port: 15433}\n');
    const problem = expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_REF_CA_SECRET_KEY', file: 'ledger.yaml', line: lineOf(text, 'orders-db-ca'), path: 'spec.tls.caSecretRef.name' });
    expect(problem.message).toContain('bundle.pem');
  });

  test('a CA Secret that holds no PEM certificate', () => {
    const secret = 'apiVersion: v1\nkind: Secret\nmetadata: {name: ledger-ca, namespace: payments}\nstringData: {ca.crt: not a certificate}\n';
    const text = resource('ledger-db', '  protocol: postgres\n  address: ledger.payments.svc:5432\n  tls:\n    mode: verify-full\n    caSecretRef: {name: ledger-ca}\n  credentials: {strategy: none}\n  sidecar: {port: 15433}\n');
    expectOnly(validateWith({ 'ledger.yaml': `${text}---\n${secret}` }), { code: 'GH_ERR_REF_CA_NOT_PEM', file: 'ledger.yaml', line: lineOf(text, 'ledger-ca'), path: 'spec.tls.caSecretRef.name' });
  });
});

describe('validateConfig: credential lifetimes and durations', () => {
  test('credentialTTL above the maxCredentialTTL of an identity named directly', () => {
    const text = policy('long', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  credentialTTL: 20m\n  rules: [{effect: allow, operations: [read]}]\n');
    const problem = expectOnly(validateWith({ 'long.yaml': text }), { code: 'GH_ERR_TTL_ABOVE_MAXIMUM', file: 'long.yaml', line: lineOf(text, 'credentialTTL'), path: 'spec.credentialTTL', name: 'long' });
    expect(problem.message).toBe(
      'credentialTTL 20m exceeds maxCredentialTTL 15m of identity ci-runner; lower the TTL or raise the identity maximum.',
    );
  });

  test('credentialTTL above the maxCredentialTTL of an identity in a subject group, including the default maximum', () => {
    const text = policy('long', '  subjects: [{group: payments-readers}]\n  resources: [reports-db]\n  credentialTTL: 2h\n  rules: [{effect: allow, operations: [read]}]\n');
    const problems = validateWith({ 'long.yaml': text });
    expect(problems.map((problem) => problem.code)).toEqual(['GH_ERR_TTL_ABOVE_MAXIMUM', 'GH_ERR_TTL_ABOVE_MAXIMUM']);
    expect(problems[0]).toMatchObject({ file: 'long.yaml', line: lineOf(text, 'credentialTTL'), path: 'spec.credentialTTL' });
    expect(problems[0]!.message).toContain('maxCredentialTTL 30m of identity billing-worker (member of group payments-readers)');
    expect(problems[1]!.message).toContain('maxCredentialTTL 1h of identity reporting (member of group payments-readers)');
  });

  test('a zero maxCredentialTTL', () => {
    const text = identity('batch', '  serviceAccountName: batch\n  maxCredentialTTL: 0s\n');
    expectOnly(validateWith({ 'batch.yaml': text }), { code: 'GH_ERR_DURATION_ZERO', file: 'batch.yaml', line: lineOf(text, '0s'), path: 'spec.maxCredentialTTL' });
  });

  test('a zero approval timeout', () => {
    const text = policy('instant', '  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules:\n    - effect: require-approval\n      approval:\n        approvers: {groups: [dba]}\n        timeout: 0m\n');
    expectOnly(validateWith({ 'instant.yaml': text }), { code: 'GH_ERR_DURATION_ZERO', file: 'instant.yaml', line: lineOf(text, 'timeout'), path: 'spec.rules[0].approval.timeout' });
  });
});

describe('validateConfig: rules', () => {
  const subjects = '  subjects: [{identity: ci-runner}]\n';

  test('a bad table glob', () => {
    const text = policy('globs', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: allow\n      tables: [orders, "db.public.orders"]\n`);
    expectOnly(validateWith({ 'globs.yaml': text }), { code: 'GH_ERR_BAD_GLOB', file: 'globs.yaml', line: lineOf(text, 'db.public.orders'), path: 'spec.rules[0].tables[1]' });
  });

  test('a bad path glob', () => {
    const text = policy('globs', `${subjects}  resources: [billing-api]\n  rules:\n    - effect: allow\n      paths: ["/v1/{invoices"]\n`);
    expectOnly(validateWith({ 'globs.yaml': text }), { code: 'GH_ERR_BAD_GLOB', file: 'globs.yaml', line: lineOf(text, 'invoices'), path: 'spec.rules[0].paths[0]' });
  });

  test('a bad masking column glob', () => {
    const text = policy('globs', `${subjects}  resources: [orders-db]\n  rules: [{effect: allow}]\n  masking:\n    - columns: ["crm.customers.email"]\n`);
    expectOnly(validateWith({ 'globs.yaml': text }), { code: 'GH_ERR_BAD_GLOB', file: 'globs.yaml', line: lineOf(text, 'crm.customers'), path: 'spec.masking[0].columns[0]' });
  });

  test('paths on a policy for a postgres resource', () => {
    const text = policy('paths', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: allow\n      paths: [/v1/orders]\n`);
    const problem = expectOnly(validateWith({ 'paths.yaml': text }), { code: 'GH_ERR_RULE_PROTOCOL_MISMATCH', file: 'paths.yaml', line: lineOf(text, 'paths:'), path: 'spec.rules[0].paths' });
    expect(problem.message).toContain('orders-db (postgres)');
  });

  test('tables on a policy for an http resource', () => {
    const text = policy('tables', `${subjects}  resources: [billing-api]\n  rules:\n    - effect: allow\n      tables: [invoices]\n`);
    expectOnly(validateWith({ 'tables.yaml': text }), { code: 'GH_ERR_RULE_PROTOCOL_MISMATCH', file: 'tables.yaml', line: lineOf(text, 'tables:'), path: 'spec.rules[0].tables' });
  });

  test('tables on a policy for both a database and an http API are fine', () => {
    const text = policy('mixed', `${subjects}  resources: [orders-db, billing-api]\n  rules:\n    - effect: allow\n      tables: [orders]\n    - effect: allow\n      paths: [/v1/**]\n`);
    expect(validateWith({ 'mixed.yaml': text })).toEqual([]);
  });

  test('tables and paths in one rule', () => {
    const text = policy('both', `${subjects}  resources: [orders-db, billing-api]\n  rules:\n    - effect: allow\n      tables: [orders]\n      paths: [/v1/orders]\n`);
    expectOnly(validateWith({ 'both.yaml': text }), { code: 'GH_ERR_RULE_NEVER_MATCHES', file: 'both.yaml', line: lineOf(text, 'paths:'), path: 'spec.rules[0].paths' });
  });

  test('SQL-only operations on an http resource are a warning', () => {
    const text = policy('http-ops', `${subjects}  resources: [billing-api]\n  rules:\n    - effect: deny\n      operations: [delete, ddl, truncate]\n    - effect: allow\n      operations: [read]\n`);
    const problem = expectOnly(validateWith({ 'http-ops.yaml': text }), {
      code: 'GH_ERR_RULE_OPERATION_PROTOCOL',
      file: 'http-ops.yaml',
      line: lineOf(text, 'ddl'),
      path: 'spec.rules[0].operations[1]',
      severity: 'warning',
    });
    expect(problem.message).toContain('ddl, truncate');
  });

  test('unboundedWrite with only read operations', () => {
    const text = policy('unbounded', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: allow\n      operations: [read]\n    - effect: deny\n      operations: [read]\n      unboundedWrite: true\n`);
    const problem = expectOnly(validateWith({ 'unbounded.yaml': text }), {
      code: 'GH_ERR_RULE_NEVER_MATCHES',
      file: 'unbounded.yaml',
      line: lineOf(text, 'unboundedWrite'),
      path: 'spec.rules[1].unboundedWrite',
    });
    expect(problem.message).toContain('add write or delete');
  });

  test('unboundedWrite on a policy for an http resource', () => {
    const text = policy('unbounded', `${subjects}  resources: [billing-api]\n  rules:\n    - effect: allow\n      operations: [read]\n    - effect: deny\n      unboundedWrite: true\n`);
    expectOnly(validateWith({ 'unbounded.yaml': text }), { code: 'GH_ERR_RULE_PROTOCOL_MISMATCH', file: 'unbounded.yaml', line: lineOf(text, 'unboundedWrite'), path: 'spec.rules[1].unboundedWrite' });
  });

  test('two rules with the same name', () => {
    const text = policy('names', `${subjects}  resources: [orders-db]\n  rules:\n    - {name: reads, effect: allow, operations: [read]}\n    - {name: reads, effect: allow, operations: [session]}\n`);
    const problem = expectOnly(validateWith({ 'names.yaml': text }), {
      code: 'GH_ERR_RULE_DUPLICATE_NAME',
      file: 'names.yaml',
      line: lineOf(text, 'operations: [session]'),
      path: 'spec.rules[1].name',
    });
    expect(problem.message).toContain('spec.rules[0]');
  });

  test('require-approval with nobody to approve', () => {
    const text = policy('held', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: require-approval\n      approval:\n        approvers: {groups: []}\n`);
    expectOnly(validateWith({ 'held.yaml': text }), { code: 'GH_ERR_APPROVAL_NO_APPROVERS', file: 'held.yaml', line: lineOf(text, 'approvers'), path: 'spec.rules[0].approval.approvers' });
  });

  test('minApprovals above the number of users who may approve', () => {
    const text = policy('held', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: require-approval\n      approval:\n        approvers: {users: [alice, bob]}\n        minApprovals: 3\n`);
    expectOnly(validateWith({ 'held.yaml': text }), { code: 'GH_ERR_APPROVAL_TOO_FEW_APPROVERS', file: 'held.yaml', line: lineOf(text, 'minApprovals'), path: 'spec.rules[0].approval.minApprovals' });
  });

  test('a message on an allow rule is a warning', () => {
    const text = policy('chatty', `${subjects}  resources: [orders-db]\n  rules:\n    - effect: allow\n      message: welcome\n`);
    expectOnly(validateWith({ 'chatty.yaml': text }), { code: 'GH_ERR_FIELD_IGNORED', file: 'chatty.yaml', line: lineOf(text, 'welcome'), path: 'spec.rules[0].message', severity: 'warning' });
  });

  test('a deny rule without conditions next to allow rules is a warning', () => {
    const text = policy('shadow', `${subjects}  resources: [orders-db]\n  rules:\n    - {name: reads, effect: allow, operations: [read]}\n    - effect: deny\n      message: nothing for you\n`);
    const problem = expectOnly(validateWith({ 'shadow.yaml': text }), {
      code: 'GH_ERR_RULE_SHADOWS_POLICY',
      file: 'shadow.yaml',
      line: lineOf(text, 'effect: deny'),
      path: 'spec.rules[1]',
      severity: 'warning',
    });
    expect(problem.message).toContain('(reads)');
  });

  test('a masking rule with empty columns and detectors is a warning', () => {
    const text = policy('mask', `${subjects}  resources: [orders-db]\n  rules: [{effect: allow}]\n  masking:\n    - {columns: [], detectors: []}\n`);
    expectOnly(validateWith({ 'mask.yaml': text }), { code: 'GH_ERR_MASKING_EMPTY', file: 'mask.yaml', line: lineOf(text, 'columns'), path: 'spec.masking[0]', severity: 'warning' });
  });
});

describe('validateConfig: policies as a whole', () => {
  test('a deny-only policy nothing else grants is a warning', () => {
    const text = policy('blocklist', '  subjects: [{identity: billing-worker}]\n  resources: [orders-db]\n  rules:\n    - {effect: deny, operations: [ddl]}\n');
    const problem = expectOnly(validateWith({ 'blocklist.yaml': text }), {
      code: 'GH_ERR_POLICY_GRANTS_NOTHING',
      file: 'blocklist.yaml',
      line: lineOf(text, 'rules'),
      path: 'spec.rules',
      severity: 'warning',
    });
    expect(problem.message).toContain('orders-db (postgres)');
  });

  test('a deny-only policy layered over a granting one is fine (the clean folder has one)', () => {
    const text = policy('more-guardrails', '  subjects: [{identity: github-deployer}]\n  resources: [orders-db]\n  rules:\n    - {effect: deny, operations: [truncate]}\n');
    expect(validateWith({ 'guardrails-2.yaml': text })).toEqual([]);
  });
});

describe('validateConfig: resources and identities', () => {
  const spec = (port: number, extra = '') => `  protocol: postgres\n  address: ledger.payments.svc:5432\n  credentials: {strategy: none}\n  sidecar: {port: ${port}}\n${extra}`;

  test('two resources on the same sidecar port', () => {
    const text = resource('ledger-db', spec(15432));
    const problem = expectOnly(validateWith({ 'zz-ledger.yaml': text }), {
      code: 'GH_ERR_PORT_CONFLICT',
      file: 'zz-ledger.yaml',
      line: lineOf(text, 'port: 15432'),
      path: 'spec.sidecar.port',
      name: 'ledger-db',
    });
    expect(problem.message).toContain('orders-db and ledger-db');
  });

  test('the same sidecar port in two namespaces is fine', () => {
    const text = resource('ledger-db', spec(15432)).replace('namespace: payments', 'namespace: ledger');
    expect(validateWith({ 'ledger.yaml': text })).toEqual([]);
  });

  test('a URL address on a postgres resource', () => {
    const text = resource('ledger-db', spec(15433).replace('ledger.payments.svc:5432', 'https://ledger.payments.svc:5432'));
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_RESOURCE_ADDRESS', file: 'ledger.yaml', line: lineOf(text, 'address'), path: 'spec.address' });
  });

  test('an address port above 65535', () => {
    const text = resource('ledger-db', spec(15433).replace(':5432', ':99999'));
    const problem = expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_RESOURCE_ADDRESS', file: 'ledger.yaml', line: lineOf(text, 'address'), path: 'spec.address' });
    expect(problem.message).toContain('port 99999');
  });

  test('tls.mode require on an http:// address', () => {
    const text = resource('ledger-api', '  protocol: http\n  address: http://ledger.payments.svc\n  tls: {mode: require}\n  credentials: {strategy: none}\n  sidecar: {port: 18081}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_RESOURCE_TLS_SCHEME', file: 'ledger.yaml', line: lineOf(text, 'mode: require'), path: 'spec.tls.mode' });
  });

  test('a database on an http resource is a warning', () => {
    const text = resource('ledger-api', '  protocol: http\n  address: https://ledger.payments.svc\n  database: ledger\n  credentials: {strategy: none}\n  sidecar: {port: 18081}\n');
    expectOnly(validateWith({ 'ledger.yaml': text }), { code: 'GH_ERR_FIELD_IGNORED', file: 'ledger.yaml', line: lineOf(text, 'database'), path: 'spec.database', severity: 'warning' });
  });

  test('two identities claiming one ServiceAccount', () => {
    const text = identity('ci-runner-2', '  serviceAccountName: ci-runner\n');
    const problem = expectOnly(validateWith({ 'zz-ci.yaml': text }), {
      code: 'GH_ERR_IDENTITY_CONFLICT',
      file: 'zz-ci.yaml',
      line: lineOf(text, 'serviceAccountName'),
      path: 'spec.serviceAccountName',
      name: 'ci-runner-2',
    });
    expect(problem.message).toContain('ServiceAccount ci-runner is also claimed by NonHumanIdentity ci-runner');
  });
});

describe('validateConfig: many mistakes at once', () => {
  test('every file of a broken folder is reported in one run, ordered by file and line', async () => {
    const problems = validateConfig(await loadConfigDir(join(TESTDATA, 'broken')));
    expect(problems.map((problem) => `${problem.file}:${problem.line} ${problem.code} ${problem.path}`)).toEqual([
      'broken-yaml.yaml:7 GH_ERR_MANIFEST_YAML ',
      'identities.yaml:13 GH_ERR_MANIFEST_SCHEMA metadata.name',
      'orders-db.yaml:10 GH_ERR_REF_UNKNOWN_SECRET spec.credentials.secretRef.name',
      'policy.yaml:12 GH_ERR_MANIFEST_SCHEMA spec.rules[0].tabels',
      'policy.yaml:19 GH_ERR_REF_EMPTY_GROUP spec.subjects[1].group',
      'policy.yaml:21 GH_ERR_TTL_ABOVE_MAXIMUM spec.credentialTTL',
      'policy.yaml:25 GH_ERR_BAD_GLOB spec.rules[0].tables[0]',
    ]);
  });
});
