import { KINDS } from '../kinds/kinds.js';
import { openApiSchema } from '../kinds/crd.js';
import { allCelRules, CEL_MIRRORS, celViolations } from './cel-rules.js';

type Self = Record<string, unknown>;

/** For each rule, objects it accepts and objects it rejects, read off the CEL text by hand. */
const TRUTH: Record<string, { holds: Self[]; breaks: Self[] }> = {
  'has(self.serviceAccountName) || has(self.oidc)': {
    holds: [{ serviceAccountName: 'ci' }, { oidc: { issuer: 'https://x', subject: 's' } }, { serviceAccountName: 'ci', oidc: {} }],
    breaks: [{}, { groups: ['ci'] }],
  },
  "self.mode != 'verify-full' || has(self.caSecretRef)": {
    holds: [{ mode: 'require' }, { mode: 'verify-full', caSecretRef: { name: 'ca' } }, {}],
    breaks: [{ mode: 'verify-full' }],
  },
  "self.strategy == 'none' || self.strategy == 'jwt' || has(self.secretRef)": {
    holds: [{ strategy: 'none' }, { strategy: 'jwt' }, { strategy: 'static', secretRef: { name: 's' } }],
    breaks: [{ strategy: 'static' }, { strategy: 'postgres-dynamic' }],
  },
  "self.protocol != 'http' || self.address.startsWith('http://') || self.address.startsWith('https://')": {
    holds: [{ protocol: 'postgres', address: 'db:5432' }, { protocol: 'http', address: 'https://api' }, { protocol: 'http', address: 'http://api' }],
    breaks: [{ protocol: 'http', address: 'api:8080' }, { protocol: 'http', address: 'ftp://api' }],
  },
  "self.credentials.strategy != 'postgres-dynamic' || self.protocol == 'postgres'": {
    holds: [{ protocol: 'postgres', credentials: { strategy: 'postgres-dynamic' } }, { protocol: 'mysql', credentials: { strategy: 'static' } }],
    breaks: [{ protocol: 'mysql', credentials: { strategy: 'postgres-dynamic' } }],
  },
  'has(self.identity) != has(self.group)': {
    holds: [{ identity: 'ci' }, { group: 'ci' }],
    breaks: [{}, { identity: 'ci', group: 'ci' }],
  },
  "self.effect != 'require-approval' || has(self.approval)": {
    holds: [{ effect: 'allow' }, { effect: 'require-approval', approval: {} }],
    breaks: [{ effect: 'require-approval' }],
  },
  "self.effect == 'require-approval' || !has(self.approval)": {
    holds: [{ effect: 'allow' }, { effect: 'require-approval', approval: {} }],
    breaks: [{ effect: 'deny', approval: {} }, { effect: 'allow', approval: {} }],
  },
  'has(self.columns) || has(self.detectors)': {
    holds: [{ columns: [] }, { detectors: ['email'] }, { columns: ['a'], detectors: ['email'] }],
    breaks: [{}, { strategy: 'hash' }],
  },
};

describe('CEL rule mirrors', () => {
  test('every CEL rule in api/kinds has a mirror in cel-rules.ts (add one when you add a rule)', () => {
    const missing = allCelRules().filter(({ rule }) => !CEL_MIRRORS.has(rule.rule));
    expect(missing).toEqual([]);
  });

  test('every mirror still belongs to a CEL rule in api/kinds', () => {
    const rules = new Set(allCelRules().map(({ rule }) => rule.rule));
    expect([...CEL_MIRRORS.keys()].filter((rule) => !rules.has(rule))).toEqual([]);
  });

  test('every mirror has a truth table here', () => {
    expect(Object.keys(TRUTH).sort()).toEqual([...CEL_MIRRORS.keys()].sort());
  });

  test.each(Object.entries(TRUTH))('%s', (rule, { holds, breaks }) => {
    const mirror = CEL_MIRRORS.get(rule)!;
    for (const self of holds) expect({ self, holds: mirror.holds(self) }).toEqual({ self, holds: true });
    for (const self of breaks) expect({ self, holds: mirror.holds(self) }).toEqual({ self, holds: false });
  });

  test('each mirror blames a field its schema has', () => {
    for (const { kind, path, rule } of allCelRules()) {
      let node = schemaAt(openApiSchema(KINDS.find((definition) => definition.kind === kind)!), path);
      for (const field of CEL_MIRRORS.get(rule.rule)!.blame) node = (node.properties as Record<string, Self>)[field]!;
      expect({ rule: rule.rule, blamed: node !== undefined }).toEqual({ rule: rule.rule, blamed: true });
    }
  });

  test('violations carry the path of the object the rule sits on, list indexes included', () => {
    const definition = KINDS.find((candidate) => candidate.kind === 'AccessPolicy')!;
    const policy = {
      spec: {
        subjects: [{ identity: 'a' }, { identity: 'b', group: 'c' }],
        resources: ['r'],
        rules: [{ effect: 'allow' }, { effect: 'deny', approval: {} }],
      },
    };
    expect(celViolations(definition, policy).map((violation) => violation.path)).toEqual([
      ['spec', 'subjects', 1],
      ['spec', 'rules', 1, 'approval'],
    ]);
  });
});

function schemaAt(root: Self, path: string): Self {
  let node = root;
  for (const part of path.split('.').filter(Boolean)) {
    const name = part.replace(/\[\]$/, '');
    node = (node.properties as Record<string, Self>)[name]!;
    if (part.endsWith('[]')) node = node.items as Self;
  }
  return node;
}
