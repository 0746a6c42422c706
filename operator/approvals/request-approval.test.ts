// The approval flow across real parts: a sidecar's GrpcApprovalService calls RequestApproval on a
// gRPC server, authenticated with a pod-bound ServiceAccount token that the loopback API server
// issued and reviews; the operator's broker creates the AccessRequest there; people decide with
// kubectl (each with their own ServiceAccount token, so the API server's userInfo says who they
// are) through the status subresource, where our admission webhook records the decider, refuses
// self-approval and non-approvers, and counts N-of-M. Notifications go to a local HTTP receiver.
// The last test runs the whole chain: psql, the PostgreSQL sidecar, RequestApproval, kubectl.
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { statementFingerprint, type ApprovalRequest } from '../../api/approvals/approval-service.js';
import { GrpcApprovalService } from '../../sidecar/approvals/grpc-approval-service.js';
import { createControlPlaneMetrics } from '../control-plane/control-plane-metrics.js';
import { nodeAuthenticatorFrom } from '../control-plane/identity-authenticator.js';
import { SnapshotCache } from '../control-plane/snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer } from '../control-plane/stream-server.js';
import { createAuthenticator } from '../identity/identity-resolver.js';
import { createTokenReviewVerifier } from '../identity/token-review.js';
import { GATEHOUSE_AUDIENCE } from '../identity/workload-identity.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import type { AccessRequestObject } from './access-request-broker.js';
import { decideRequest, listPendingRequests } from './access-request-client.js';
import { createClusterApprovals, type ClusterApprovals } from './cluster-approvals.js';
import { APP_IDENTITY, NS, startApprovalCluster, type ApprovalCluster } from './testing/approval-cluster.js';
import { StatementApprovals } from '../../sidecar/approvals/statement-approvals.js';
import { startSidecarFixture } from '../../sidecar/postgres/testing/sidecar-fixture.js';

let cluster: ApprovalCluster;
let kube: KubeClient;
let discovery: DiscoveryServer;
let sidecar: GrpcApprovalService;
let registry: Registry;
let approvals: ClusterApprovals;
let receiver: HttpServer;
const received: { path: string; body: Record<string, unknown> }[] = [];
let podToken: string;

const kubectlAs = (namespace: string, serviceAccount: string) => cluster.kubectlAs(namespace, serviceAccount);

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

beforeAll(async () => {
  cluster = await startApprovalCluster();
  kube = cluster.kube;
  const api = cluster.api;
  const pod = await kube.create<KubeObject>(RESOURCE_TYPES.pods, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app-1', namespace: NS }, spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'app:1' }] },
  });
  podToken = await api.issueServiceAccountToken({ namespace: NS, serviceAccount: 'app', audiences: [GATEHOUSE_AUDIENCE], pod: { name: 'app-1', uid: pod.metadata.uid! } });

  receiver = createServer((request, response) => {
    void readBody(request).then((text) => {
      received.push({ path: request.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  // The operator side: approvals as the operator builds them.
  registry = new Registry();
  const verifier = createTokenReviewVerifier({ server: api.url, ca: api.caPem, bearerToken: () => api.adminToken });
  const authenticate = createAuthenticator({ serviceAccounts: { issuer: api.serviceAccountIssuer, verifier }, identities: () => [APP_IDENTITY] });
  const proto = loadDiscoveryProto();
  approvals = createClusterApprovals({
    kube, registry, logger: silentLogger(), authenticator: nodeAuthenticatorFrom(authenticate), operatorUser: 'gatehouse-loopback-admin',
    notifications: { webhookUrl: `${receiverUrl}/hook`, slackUrl: `${receiverUrl}/slack` },
  });
  // The discovery service as the operator runs it, with RequestApproval among its extra handlers.
  const cache = new SnapshotCache();
  discovery = await startDiscoveryServer({
    proto, watcher: cache, authenticator: nodeAuthenticatorFrom(authenticate), metrics: createControlPlaneMetrics({ registry: new Registry(), status: cache }),
    logger: silentLogger(), transport: { kind: 'plaintext-local-mode' }, host: '127.0.0.1', port: 0,
    extraHandlers: { RequestApproval: approvals.handler },
  });
  const port = discovery.port;
  sidecar = new GrpcApprovalService({
    proto, address: `127.0.0.1:${port}`, transport: { kind: 'plaintext-local-mode' }, nodeId: `${NS}/app-1`, token: () => podToken, sidecarVersion: 'test',
  });
}, 60_000);

afterAll(async () => {
  sidecar?.close();
  await discovery?.close(1_000);
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await cluster?.close();
});

function heldStatement(statement: string, rule = 'deletes'): ApprovalRequest {
  return {
    identity: 'app', resource: 'orders-db', policy: 'app-policy', rule, pod: 'claimed/by-the-sidecar', statement,
    fingerprint: statementFingerprint(statement), reason: `rule app-policy/${rule} needs approval`,
  };
}

async function pendingNamed(statement: string): Promise<AccessRequestObject> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await kube.list<AccessRequestObject>(RESOURCE_TYPES.accessRequests, { namespace: NS });
    const found = page.items.find((item) => item.spec.statement === statement && item.status?.phase === 'Pending');
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no pending AccessRequest for ${statement}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function approvalPatch(decision: 'approve' | 'deny', extra: Record<string, unknown> = {}): string {
  return JSON.stringify([{ op: 'add', path: '/status/approvals/-', value: { decision, ...extra } }]);
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name)!;
  const { values } = await metric.get();
  return values.filter((value) => Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted)).reduce((sum, value) => sum + value.value, 0);
}

describe('RequestApproval end to end', () => {
  it('creates the AccessRequest, records deciders from userInfo, refuses self-approval and non-approvers, and approves after N of M', async () => {
    const statement = 'DELETE FROM orders WHERE id = 42';
    const decision = sidecar.requestApproval(heldStatement(statement), { signal: new AbortController().signal, timeoutMs: 60_000 });
    const request = await pendingNamed(statement);
    const name = request.metadata.name;
    expect(name).toMatch(/^app-/);
    expect(request.metadata.labels).toMatchObject({ 'gatehouse.dev/identity': 'app', 'gatehouse.dev/resource': 'orders-db' });
    expect(request.spec).toMatchObject({
      identity: 'app', resource: 'orders-db', policy: 'app-policy', rule: 'deletes', pod: `${NS}/app-1`, fingerprint: statementFingerprint(statement),
      requester: `system:serviceaccount:${NS}:app`, requiredApprovals: 2,
      approvers: { groups: ['system:serviceaccounts:dba'], users: ['system:serviceaccount:oncall:pager'] },
    });
    expect(await metricValue('gatehouse_approvals_pending')).toBe(1);
    expect((await listPendingRequests(kube, NS)).map((row) => row.name)).toContain(name);

    const self = await kubectlAs(NS, 'app');
    const selfTry = await self.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=json', '-p', approvalPatch('approve')]);
    expect(selfTry.code).not.toBe(0);
    expect(selfTry.stderr).toMatch(/system:serviceaccount:payments:app made this request and may not decide it/);

    const outsider = await kubectlAs('web', 'mallory');
    const outsiderTry = await outsider.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=json', '-p', approvalPatch('approve')]);
    expect(outsiderTry.stderr).toMatch(/system:serviceaccount:web:mallory may not decide AccessRequest .*: its approvers are users system:serviceaccount:oncall:pager or groups system:serviceaccounts:dba/);
    // Nobody widens the approvers, and nobody sets the phase by hand, not even an approver.
    const widen = await outsider.kubectl(['patch', 'accessrequest', name, '--type=merge', '-p', '{"spec":{"approvers":{"users":["system:serviceaccount:web:mallory"]}}}']);
    expect(widen.stderr).toMatch(/the spec of an AccessRequest cannot change/);
    const alice = await kubectlAs('dba', 'alice');
    const forged = await alice.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved","decidedBy":"alice"}}']);
    expect(forged.stderr).toMatch(/the phase follows from status.approvals/);

    // The client claims to be someone else: the webhook writes who it really is.
    const first = await alice.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=json', '-p', approvalPatch('approve', { user: 'system:serviceaccount:oncall:pager', reason: 'ticket 7' })]);
    expect(first.stderr).toBe('');
    const afterFirst = (await kube.get<AccessRequestObject>(RESOURCE_TYPES.accessRequests, NS, name))!;
    expect(afterFirst.status).toMatchObject({ phase: 'Pending', approvals: [{ decision: 'approve', user: 'system:serviceaccount:dba:alice', reason: 'ticket 7' }] });
    expect(afterFirst.status!.approvals![0]!.groups).toContain('system:serviceaccounts:dba');
    const twice = await alice.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=json', '-p', approvalPatch('approve')]);
    expect(twice.stderr).toMatch(/has already decided .*N-of-M needs distinct approvers/);

    // The second approver uses the same code path as `kubectl gatehouse approve`.
    const pagerToken = await cluster.api.issueServiceAccountToken({ namespace: 'oncall', serviceAccount: 'pager', audiences: [cluster.api.serviceAccountIssuer] });
    const pagerConfig = join(cluster.dir, 'pager.kubeconfig');
    await cluster.api.writeKubeconfig(pagerConfig, { token: pagerToken });
    const pager = createKubeClient({ kubeconfigPath: pagerConfig });
    await decideRequest(pager, NS, name, 'approve', 'looks right');
    pager.close?.();

    await expect(decision).resolves.toEqual({
      outcome: 'approved',
      decidedBy: ['system:serviceaccount:dba:alice', 'system:serviceaccount:oncall:pager'],
      reason: 'ticket 7; looks right',
      request: `AccessRequest ${NS}/${name}`,
    });
    const decided = (await kube.get<AccessRequestObject>(RESOURCE_TYPES.accessRequests, NS, name))!;
    expect(decided.status).toMatchObject({ phase: 'Approved', decidedBy: 'system:serviceaccount:dba:alice,system:serviceaccount:oncall:pager' });
    const late = await alice.kubectl(['patch', 'accessrequest', name, '--subresource=status', '--type=json', '-p', approvalPatch('deny')]);
    expect(late.stderr).toMatch(/was already decided \(Approved\)/);

    expect(await metricValue('gatehouse_approvals_pending')).toBe(0);
    expect(await metricValue('gatehouse_approvals_decided_total', { outcome: 'approved' })).toBe(1);
    expect(await metricValue('gatehouse_approvals_decision_seconds', { outcome: 'approved' })).toBeGreaterThan(0);
    await approvals.flush();
    const hooks = received.filter((entry) => entry.path === '/hook' && (entry.body.accessRequest as { name: string }).name === name);
    expect(hooks.map((entry) => [entry.body.type, entry.body.phase])).toEqual([['gatehouse.approval.requested', 'Pending'], ['gatehouse.approval.decided', 'Approved']]);
    expect(hooks[0]!.body).toMatchObject({ identity: 'app', resource: 'orders-db', statement, requiredApprovals: 2, approveCommand: expect.stringContaining(`kubectl gatehouse approve ${name} -n ${NS}`) });
    const slack = received.filter((entry) => entry.path === '/slack' && String(entry.body.text).includes(statement));
    expect(slack).toHaveLength(1);
    expect(slack[0]!.body.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: slack[0]!.body.text } }]);
  });

  it('denies on the first deny, with the reason and who denied it', async () => {
    const statement = "UPDATE orders SET total = 0 WHERE id = 1";
    const decision = sidecar.requestApproval(heldStatement(statement, 'writes'), { signal: new AbortController().signal, timeoutMs: 60_000 });
    const { metadata } = await pendingNamed(statement);
    const bob = await kubectlAs('dba', 'bob');
    const denied = await bob.kubectl(['patch', 'accessrequest', metadata.name, '--subresource=status', '--type=json', '-p', approvalPatch('deny', { reason: 'use the refund tool' })]);
    expect(denied.code).toBe(0);
    await expect(decision).resolves.toMatchObject({ outcome: 'denied', decidedBy: ['system:serviceaccount:dba:bob'], reason: 'use the refund tool' });
    expect(await metricValue('gatehouse_approvals_decided_total', { outcome: 'denied' })).toBe(1);
  });

  it('expires the request at the timeout and when the sidecar withdraws it', async () => {
    const statement = 'DELETE FROM orders WHERE id = 43';
    const expired = await sidecar.requestApproval(heldStatement(statement), { signal: new AbortController().signal, timeoutMs: 1_000 });
    expect(expired).toMatchObject({ outcome: 'expired', decidedBy: [], reason: 'no decision within 1s' });
    const page = await kube.list<AccessRequestObject>(RESOURCE_TYPES.accessRequests, { namespace: NS });
    expect(page.items.find((item) => item.spec.statement === statement)!.status).toMatchObject({ phase: 'Expired', reason: 'no decision within 1s' });

    const withdrawnStatement = 'DELETE FROM orders WHERE id = 44';
    const withdraw = new AbortController();
    const pending = sidecar.requestApproval(heldStatement(withdrawnStatement), { signal: withdraw.signal, timeoutMs: 60_000 });
    const { metadata } = await pendingNamed(withdrawnStatement);
    withdraw.abort();
    await expect(pending).rejects.toThrow(/CANCELLED|Cancelled/i);
    const deadline = Date.now() + 5_000;
    let phase: string | undefined;
    while (Date.now() < deadline && phase !== 'Expired') {
      phase = (await kube.get<AccessRequestObject>(RESOURCE_TYPES.accessRequests, NS, metadata.name))?.status?.phase;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(phase).toBe('Expired');
    expect(await metricValue('gatehouse_approvals_decided_total', { outcome: 'withdrawn' })).toBe(1);
  });

  it('refuses a node whose pod does not run as the identity it names, and an unknown rule', async () => {
    await kube.create(RESOURCE_TYPES.nonHumanIdentities, {
      apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'ops', namespace: NS }, spec: { serviceAccountName: 'ops' },
    });
    const asOps = { ...heldStatement('DELETE FROM orders'), identity: 'ops' };
    await expect(sidecar.requestApproval(asOps, { signal: new AbortController().signal, timeoutMs: 5_000 }))
      .rejects.toThrow(/GH_ERR_APPROVAL_NOT_ALLOWED: .*the pod runs as ServiceAccount app, not as identity ops/);
    await expect(sidecar.requestApproval(heldStatement('DELETE FROM orders', 'reads'), { signal: new AbortController().signal, timeoutMs: 5_000 }))
      .rejects.toThrow(/has no require-approval rule reads/);
    const forged = new GrpcApprovalService({
      proto: loadDiscoveryProto(), address: (sidecar as unknown as { options: { address: string } }).options.address,
      transport: { kind: 'plaintext-local-mode' }, nodeId: `${NS}/someone-else`, token: () => podToken, sidecarVersion: 'test',
    });
    await expect(forged.requestApproval(heldStatement('DELETE FROM orders'), { signal: new AbortController().signal, timeoutMs: 5_000 }))
      .rejects.toThrow(/GH_ERR_CP_NODE_MISMATCH/);
    forged.close();
  });
});

describe('the whole chain', () => {
  it('holds a real psql UPDATE in the sidecar until an approver patches the AccessRequest with kubectl', async () => {
    const f = await startSidecarFixture({
      policyRules: `  rules:
    - {name: reads, effect: allow, operations: [read, session, transaction]}
    - {name: writes, effect: require-approval, operations: [write], approval: {approvers: {groups: [dba]}, timeout: 30s}}
`,
      sidecar: { approvals: new StatementApprovals({ service: sidecar, pod: `${NS}/app-1` }) },
    });
    try {
      const statement = "UPDATE customers SET notes = 'approved change' WHERE id = 3";
      const psql = f.psql(statement);
      const request = await pendingNamed(statement);
      expect(request.spec).toMatchObject({ identity: 'app', resource: 'db', policy: 'app-policy', rule: 'writes', pod: `${NS}/app-1` });
      expect(await f.adminPsql('SELECT notes FROM customers WHERE id = 3')).toBe('');
      const erin = await kubectlAs('dba', 'erin');
      const approved = await erin.kubectl(['patch', 'accessrequest', request.metadata.name, '--subresource=status', '--type=json', '-p', approvalPatch('approve')]);
      expect(approved.stderr).toBe('');
      expect(await psql).toMatchObject({ code: 0, stderr: '' });
      expect(await f.adminPsql('SELECT notes FROM customers WHERE id = 3')).toBe('approved change');
    } finally {
      await f.stop();
    }
  }, 60_000);
});
