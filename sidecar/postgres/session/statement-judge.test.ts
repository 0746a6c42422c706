// The judge remembers judgements (by decision, and the last one looked up); a policy reload must
// still apply to the very next statement, and statements of different kinds in turn must each be
// judged as a fresh judge would judge them.
import type { AccessPolicy, NonHumanIdentity, PolicyRuleT, ProtectedResource } from '../../../api/kinds/kinds.js';
import { loadSqlParser, SqlClassifier } from '../../../api/sql/classify.js';
import { buildResourceState, type PostgresResourceHandle, type PostgresResourceState } from './resource-state.js';
import { StatementJudge, type Judgement } from './statement-judge.js';

const identity: NonHumanIdentity = { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'ci-runner' }, spec: { serviceAccountName: 'ci-runner' } };
const resource: ProtectedResource = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'ProtectedResource',
  metadata: { name: 'orders-db' },
  spec: { protocol: 'postgres', address: 'orders-db:5432', credentials: { strategy: 'none' }, sidecar: { port: 15432 } },
};

function stateWith(version: string, rules: PolicyRuleT[]): PostgresResourceState {
  const policy: AccessPolicy = {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'p' },
    spec: { subjects: [{ identity: 'ci-runner' }], resources: ['orders-db'], rules },
  };
  return buildResourceState(identity, { resource, policies: [policy] }, version, new Uint8Array(32));
}

const readOnly = stateWith('1', [{ name: 'reads', effect: 'allow', operations: ['read'] }, { name: 'no-deletes', effect: 'deny', operations: ['delete'] }]);
const nothing = stateWith('2', [{ name: 'no-reads', effect: 'deny', operations: ['read'] }]);

function judgeOf(current: () => PostgresResourceState | undefined, classifier = new SqlClassifier()): StatementJudge {
  const handle: PostgresResourceHandle = { name: 'orders-db', current };
  return new StatementJudge(handle, classifier, () => undefined);
}

function essence(judgement: Judgement): unknown {
  return { effect: judgement.decision.effect, rule: judgement.decision.rule?.id, denied: judgement.denial !== undefined, state: judgement.state?.version };
}

beforeAll(async () => {
  await loadSqlParser();
});

describe('StatementJudge.text', () => {
  test('a policy reload applies to the next statement of a shape judged just before', () => {
    let state: PostgresResourceState | undefined = readOnly;
    const judge = judgeOf(() => state);
    expect(essence(judge.text('SELECT * FROM orders WHERE id = 1'))).toEqual({ effect: 'allow', rule: 'p/reads', denied: false, state: '1' });
    expect(essence(judge.text('SELECT * FROM orders WHERE id = 2'))).toEqual({ effect: 'allow', rule: 'p/reads', denied: false, state: '1' });
    state = nothing;
    expect(essence(judge.text('SELECT * FROM orders WHERE id = 3'))).toEqual({ effect: 'deny', rule: 'p/no-reads', denied: true, state: '2' });
    state = readOnly;
    expect(essence(judge.text('SELECT * FROM orders WHERE id = 4'))).toEqual({ effect: 'allow', rule: 'p/reads', denied: false, state: '1' });
    state = undefined;
    expect(judge.text('SELECT * FROM orders WHERE id = 5').denial?.decision.reason).toBe('no-policy');
  });

  test('statements of different kinds in turn are judged as a fresh judge judges each', () => {
    const texts = ['SELECT * FROM orders WHERE id = 1', 'DELETE FROM orders WHERE id = 2', 'SELECT 1', 'SELEC 1', 'UPDATE orders SET x = 1'];
    const judge = judgeOf(() => readOnly);
    // A fixed walk over the texts with repeats and switches.
    for (const index of [0, 0, 1, 0, 2, 2, 1, 3, 0, 4, 4, 1, 1, 0, 3, 3, 2]) {
      const text = texts[index]!;
      expect(essence(judge.text(text))).toEqual(essence(judgeOf(() => readOnly).text(text)));
    }
  });
});
