// `gatehouse operator` wiring of approvals, in-process against the loopback API server with the
// AccessRequest decision webhook registered at the operator: the operator learns its own user from
// the API server (so only its own writes may initialise a request), --operator-user overrides it,
// the gatehouse_approvals_* metrics are on its /metrics, and bad notification URLs are refused
// before anything connects, without echoing them (they are credentials).
import { ACCESS_REQUEST_STATUS_PATH } from '../../operator/admission/access-request-webhook.js';
import { TEST_TLS } from '../../operator/control-plane/testing/discovery-fixture.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import { until } from '../../testing/async-checks.js';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { OPERATOR_ARGS, OPERATOR_START_MS, OPERATOR_TLS_ARGS, startOperatorCliFolder, type OperatorCliFolder } from './testing/operator-cli-fixture.js';

const NS = 'payments';
let folder: OperatorCliFolder;
let kube: KubeClient;

const io = () => bufferedIO(folder.dir);
const BASE = [...OPERATOR_ARGS, ...OPERATOR_TLS_ARGS];

beforeAll(async () => {
  folder = await startOperatorCliFolder('gatehouse-operator-approvals-');
  kube = folder.kubeClient();
  for (const name of ['gatehouse-system', NS]) await kube.create(RESOURCE_TYPES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
});

afterAll(async () => {
  kube.close?.();
  await folder.close();
});

interface RunningOperatorCli {
  readonly adminPort: number;
  stop(): Promise<number>;
}

/** Starts the operator and points the decision webhook at its webhook port, as the chart's Service would. */
async function startOperatorCli(args: readonly string[]): Promise<RunningOperatorCli> {
  const cli = io();
  const exit = runCli([...BASE, ...args], cli);
  await until(() => cli.out().includes('ready\n') || cli.err() !== '', OPERATOR_START_MS);
  const ports = /control plane on :(\d+), webhooks on :(\d+), metrics on :(\d+)/.exec(cli.out());
  if (ports === null) throw new Error(`the operator did not start: ${cli.err()}`);
  await kube.delete(RESOURCE_TYPES.mutatingWebhookConfigurations, undefined, 'gatehouse-accessrequest-decisions').catch(() => undefined);
  await kube.create(RESOURCE_TYPES.mutatingWebhookConfigurations, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'gatehouse-accessrequest-decisions' },
    webhooks: [{
      name: 'accessrequest-status.gatehouse.dev',
      clientConfig: { url: `https://127.0.0.1:${ports[2]}${ACCESS_REQUEST_STATUS_PATH}`, caBundle: Buffer.from(TEST_TLS.caPem).toString('base64') },
      rules: [{ apiGroups: ['gatehouse.dev'], apiVersions: ['v1alpha1'], operations: ['UPDATE'], resources: ['accessrequests', 'accessrequests/status'] }],
      failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'],
    }],
  } as KubeObject);
  return {
    adminPort: Number(ports[3]),
    stop: async () => {
      cli.abort();
      return exit;
    },
  };
}

/** A new AccessRequest as the broker creates it, then its status initialised Pending by the admin kubeconfig's user. */
async function initialisePending(name: string): Promise<{ ok: true } | { ok: false; message: string }> {
  await kube.create(RESOURCE_TYPES.accessRequests, {
    apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessRequest', metadata: { name, namespace: NS },
    spec: { identity: 'app', resource: 'orders-db', policy: 'p', rule: 'deletes', statement: 'DELETE FROM t', fingerprint: 'f', requester: 'system:serviceaccount:payments:app', approvers: { groups: ['dba'] }, requiredApprovals: 1 },
  } as KubeObject);
  try {
    await kube.patchStatus(RESOURCE_TYPES.accessRequests, NS, name, { phase: 'Pending', expiresAt: new Date(Date.now() + 60_000).toISOString() });
    return { ok: true };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

describe('gatehouse operator: approvals', () => {
  test('trusts its own user, as the API server names it, to initialise requests, and counts approvals on /metrics', async () => {
    const operator = await startOperatorCli([]);
    try {
      expect(await initialisePending('app-own-user')).toEqual({ ok: true });
      const metrics = await (await fetch(`http://127.0.0.1:${operator.adminPort}/metrics`)).text();
      for (const name of ['gatehouse_approvals_pending', 'gatehouse_approvals_decided_total', 'gatehouse_approvals_decision_seconds', 'gatehouse_approvals_notifications_total']) {
        expect({ name, present: metrics.includes(`# TYPE ${name} `) }).toEqual({ name, present: true });
      }
    } finally {
      expect(await operator.stop()).toBe(0);
    }
  }, 60_000);

  test('with --operator-user naming someone else, the same write is refused: the webhook trusts exactly that user', async () => {
    const operator = await startOperatorCli(['--operator-user', 'system:serviceaccount:gatehouse-system:gatehouse-operator']);
    try {
      const result = await initialisePending('app-other-user');
      expect(result.ok).toBe(false);
      expect(result.ok === false && result.message).toContain('only the Gatehouse operator initialises');
    } finally {
      expect(await operator.stop()).toBe(0);
    }
  }, 60_000);

  test('refuses notification URLs that are not http(s), from flags or env, before connecting and without printing them', async () => {
    const secretish = 'ftp://hooks.example.com/T000/B000/s3cr3t';
    const flag = io();
    expect(await runCli([...BASE, '--approvals-slack-url', secretish], flag)).not.toBe(0);
    expect(flag.err()).toContain('--approvals-slack-url must be an http(s) URL');
    expect(flag.err()).not.toContain('s3cr3t');
    const garbage = io();
    expect(await runCli([...BASE, '--approvals-webhook-url', 'not a url s3cr3t'], garbage)).not.toBe(0);
    expect(garbage.err()).toContain('--approvals-webhook-url is not a URL');
    expect(garbage.err()).not.toContain('s3cr3t');
    const env = io();
    process.env.GATEHOUSE_APPROVALS_WEBHOOK_URL = secretish;
    try {
      expect(await runCli(BASE, env)).not.toBe(0);
    } finally {
      delete process.env.GATEHOUSE_APPROVALS_WEBHOOK_URL;
    }
    expect(env.err()).toContain('GATEHOUSE_APPROVALS_WEBHOOK_URL must be an http(s) URL');
    expect(env.err()).not.toContain('s3cr3t');
  });
});
