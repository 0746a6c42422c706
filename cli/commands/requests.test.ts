// `kubectl gatehouse requests|approve|deny` against a cluster: the real kubectl finds the plugin
// (bin/kubectl-gatehouse) on PATH and runs the CLI with the user's kubeconfig; the loopback API
// server authenticates each approver's token and calls our admission webhook, which records the
// decider. The AccessRequest is made as the operator makes it (broker code, no sidecar here).
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { statementFingerprint, type ApprovalDecision } from '../../api/approvals/approval-service.js';
import { AccessRequestBroker } from '../../operator/approvals/access-request-broker.js';
import { createApprovalMetrics } from '../../operator/approvals/approval-metrics.js';
import { ApprovalNotifier } from '../../operator/approvals/approval-notifier.js';
import { NS, startApprovalCluster, type ApprovalCluster } from '../../operator/approvals/testing/approval-cluster.js';
import type { KubeTools } from '../../e2e/apiserver/kubectl-runner.js';
import { formatRequests } from './requests.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
let cluster: ApprovalCluster;
let broker: AccessRequestBroker;

beforeAll(async () => {
  cluster = await startApprovalCluster();
  const metrics = createApprovalMetrics(new Registry());
  broker = new AccessRequestBroker({ kube: cluster.kube, metrics, notifier: new ApprovalNotifier({}, metrics, silentLogger()), logger: silentLogger() });
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

/** `kubectl gatehouse ...` as the user of `tools`' kubeconfig, with the plugin folder on PATH. */
function kubectlGatehouse(tools: KubeTools, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const kubectl = join(REPO, '.gatehouse', 'bin', 'kubectl');
  return new Promise((done) => {
    execFile(kubectl, ['gatehouse', ...args], {
      cwd: REPO,
      env: { PATH: `${join(REPO, 'bin')}:${process.env.PATH ?? ''}`, HOME: cluster.dir, KUBECONFIG: tools.kubeconfig, GATEHOUSE_FROM_SOURCE: '1' },
      timeout: 60_000,
    }, (error, stdout, stderr) => done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function hold(statement: string, rule: 'deletes' | 'writes'): { decision: Promise<ApprovalDecision>; withdraw: AbortController } {
  const withdraw = new AbortController();
  const approval = rule === 'deletes'
    ? { approvers: { groups: ['system:serviceaccounts:dba'], users: ['system:serviceaccount:oncall:pager'] }, minApprovals: 2 }
    : { approvers: { groups: ['system:serviceaccounts:dba'] } };
  const decision = broker.requestApproval(
    { identity: 'app', resource: 'orders-db', policy: 'app-policy', rule, pod: `${NS}/app-1`, statement, fingerprint: statementFingerprint(statement), reason: 'needs approval' },
    { namespace: NS, requester: `system:serviceaccount:${NS}:app`, approval },
    60_000,
    withdraw.signal,
  );
  return { decision, withdraw };
}

describe('kubectl gatehouse', () => {
  it('lists pending requests and decides them as the kubeconfig user, N of M', async () => {
    const { decision } = hold('DELETE FROM orders WHERE id = 99', 'deletes');
    const alice = await cluster.kubectlAs('dba', 'alice');
    let listed = { code: 1, stdout: '', stderr: '' };
    for (let tries = 0; tries < 50 && !listed.stdout.includes('DELETE FROM orders WHERE id = 99'); tries++) {
      listed = await kubectlGatehouse(alice, ['requests', '-n', NS]);
    }
    expect(listed.stderr).toBe('');
    const row = listed.stdout.split('\n').find((line) => line.includes('DELETE FROM orders WHERE id = 99'))!;
    expect(row).toMatch(/^app-\S+ +app +orders-db +app-policy\/deletes +0\/2 /);
    const name = row.split(/\s+/)[0]!;

    const first = await kubectlGatehouse(alice, ['approve', name, '-n', NS, '--reason', 'reviewed']);
    expect(first).toMatchObject({ code: 0, stdout: `accessrequest/${name}: Pending (1/2 approvals)\n` });
    const again = await kubectlGatehouse(alice, ['approve', name, '-n', NS]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/GH_ERR_APPROVAL_REFUSED: The decision on payments\/.* was refused: .*system:serviceaccount:dba:alice has already decided/);
    const self = await kubectlGatehouse(await cluster.kubectlAs(NS, 'app'), ['approve', name, '-n', NS]);
    expect(self.stderr).toMatch(/may not decide it: approval must come from someone else/);

    const bob = await cluster.kubectlAs('dba', 'bob');
    const second = await kubectlGatehouse(bob, ['approve', name, '-n', NS]);
    expect(second).toMatchObject({ code: 0, stdout: `accessrequest/${name}: Approved (2/2 approvals), decided by system:serviceaccount:dba:alice,system:serviceaccount:dba:bob\n` });
    await expect(decision).resolves.toMatchObject({ outcome: 'approved', decidedBy: ['system:serviceaccount:dba:alice', 'system:serviceaccount:dba:bob'] });
    expect((await kubectlGatehouse(bob, ['requests', '-n', NS])).stdout).not.toContain(name);
  });

  it('denies with a reason, and lists across namespaces with -A', async () => {
    const { decision } = hold("UPDATE orders SET total = 0 WHERE id = 98", 'writes');
    const carol = await cluster.kubectlAs('dba', 'carol');
    let listed = { code: 1, stdout: '', stderr: '' };
    for (let tries = 0; tries < 50 && !listed.stdout.includes('id = 98'); tries++) listed = await kubectlGatehouse(carol, ['requests', '-A']);
    expect(listed.stdout.split('\n')[0]).toMatch(/^NAMESPACE +NAME +IDENTITY/);
    const name = listed.stdout.split('\n').find((line) => line.includes('id = 98'))!.split(/\s+/)[1]!;
    const denied = await kubectlGatehouse(carol, ['deny', name, '-n', NS, '--reason', 'use the refund tool']);
    expect(denied.stdout).toBe(`accessrequest/${name}: Denied (0/1 approvals), decided by system:serviceaccount:dba:carol\n`);
    await expect(decision).resolves.toMatchObject({ outcome: 'denied', decidedBy: ['system:serviceaccount:dba:carol'], reason: 'use the refund tool' });
  });

  it('says when nothing waits, and names a request that does not exist', async () => {
    const dave = await cluster.kubectlAs('dba', 'dave');
    expect((await kubectlGatehouse(dave, ['requests', '-n', 'default'])).stdout).toBe('No pending requests.\n');
    const missing = await kubectlGatehouse(dave, ['approve', 'app-nothing', '-n', NS]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/GH_ERR_APPROVAL_NOT_FOUND: No pending approval request named app-nothing in namespace payments/);
  });
});

describe('formatRequests', () => {
  it('aligns columns and shortens long statements to one line', () => {
    const text = formatRequests([{
      namespace: 'ns', name: 'app-1', identity: 'app', resource: 'db', rule: 'p/r', approvals: '0/1', expiresAt: '2026-01-01T00:00:00.000Z',
      statement: `DELETE FROM orders\n  WHERE ${'x = 1 AND '.repeat(10)}y = 2`,
    }], false);
    const [header, row] = text.trimEnd().split('\n');
    expect(header).toBe('NAME   IDENTITY  RESOURCE  RULE  APPROVALS  EXPIRES                   STATEMENT');
    expect(row).toMatch(/^app-1  app       db        p\/r   0\/1        2026-01-01T00:00:00.000Z  DELETE FROM orders WHERE x = 1 AND .*…$/);
    expect(row!.length).toBeLessThan(200);
  });
});
