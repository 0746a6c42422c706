// The stand-in kubelet against the loopback API server, with a throwaway script standing in for the
// sidecar image: env and $(VAR) expansion, the pod-bound token, readiness → pod status, deletion → gone.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthenticationV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { silentLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import { startStandInKubelet, type StandInKubelet } from './stand-in-kubelet.js';
import { injectedPod } from './testdata/injected-pod.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const fakeSidecar = path.join(here, 'testdata', 'fake-sidecar.mjs');
const NAMESPACE = 'payments';

interface Printed {
  argv: string[];
  env: Record<string, string>;
  token: string | null;
}

function printedBy(logs: string): Printed {
  return JSON.parse(logs.split('\n')[0]) as Printed;
}

async function until<T>(read: () => Promise<T> | T, predicate: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not reached; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startStandInKubelet', () => {
  let server: LoopbackApiServer;
  let dir: string;
  let core: CoreV1Api;
  let auth: AuthenticationV1Api;
  let kubelet: StandInKubelet;

  beforeAll(async () => {
    server = await startLoopbackApiServer({ logger: silentLogger() });
    dir = await mkdtemp(path.join(os.tmpdir(), 'stand-in-kubelet-test-'));
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfigPath);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    auth = kubeConfig.makeApiClient(AuthenticationV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'ci-runner' } } });
    kubelet = await startStandInKubelet({
      kubeconfigPath,
      repoRoot,
      namespace: NAMESPACE,
      imageCommands: { 'ghcr.io/gatehouse/sidecar': [process.execPath, fakeSidecar] },
      logger: silentLogger(),
      workDir: path.join(dir, 'kubelet'),
      restartBackoffMs: 100,
      maxGraceMs: 2000,
    });
  });

  afterAll(async () => {
    await kubelet?.stop();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the sidecar with downward-API env, $(VAR) expansion and the mount path rewritten', async () => {
    const created = await core.createNamespacedPod({ namespace: NAMESPACE, body: injectedPod({ name: 'env-pod', namespace: NAMESPACE }) });
    const view = await kubelet.waitForReady(NAMESPACE, 'env-pod', 15_000);
    const { argv, env } = printedBy(view.logs());
    expect(env).toMatchObject({
      POD_NAME: 'env-pod',
      POD_NAMESPACE: NAMESPACE,
      POD_UID: created.metadata?.uid,
      APP_LABEL: 'orders',
      NODE_ID: `${NAMESPACE}/env-pod`,
      EARLY_REFERENCE: '$(LATER)',
      GATEHOUSE_ADMIN_PORT: String(view.adminPort),
      ADMIN_URL: `http://127.0.0.1:${view.adminPort}/readyz`,
      GATEHOUSE_TOKEN_FILE: path.join(view.volumeRoot, 'gatehouse-token', 'token'),
    });
    expect(argv).toEqual(['sidecar', '--node-id', `${NAMESPACE}/env-pod`, '--literal', '$(POD_NAME)', `--token-file=${env.GATEHOUSE_TOKEN_FILE}`]);
    expect(await readFile(path.join(view.volumeRoot, 'gatehouse-token', 'labels'), 'utf8')).toBe('app="orders"\ntier="backend"');
    expect(await readFile(view.logFile, 'utf8')).toContain('"POD_NAME":"env-pod"');
    await core.deleteNamespacedPod({ name: 'env-pod', namespace: NAMESPACE });
  });

  it('writes a token bound to the pod, for the projected audience, that the API server accepts', async () => {
    const created = await core.createNamespacedPod({ namespace: NAMESPACE, body: injectedPod({ name: 'token-pod', namespace: NAMESPACE }) });
    const view = await kubelet.waitForReady(NAMESPACE, 'token-pod', 15_000);
    const { token, env } = printedBy(view.logs());
    expect(token).toBe(await readFile(env.GATEHOUSE_TOKEN_FILE, 'utf8'));
    const claims = decodeJwt(token ?? '');
    expect(claims).toMatchObject({
      iss: server.serviceAccountIssuer,
      aud: ['gatehouse'],
      sub: `system:serviceaccount:${NAMESPACE}:ci-runner`,
      'kubernetes.io': { namespace: NAMESPACE, serviceaccount: { name: 'ci-runner' }, pod: { name: 'token-pod', uid: created.metadata?.uid } },
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);
    const review = await auth.createTokenReview({ body: { spec: { token: token ?? '', audiences: ['gatehouse'] } } });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([created.metadata?.uid]);
    await core.deleteNamespacedPod({ name: 'token-pod', namespace: NAMESPACE });
  });

  it('reports the pod Running and Ready only after the startup probe passes', async () => {
    const pod = injectedPod({ name: 'ready-pod', namespace: NAMESPACE, extraEnv: [{ name: 'FAKE_READY_AFTER_MS', value: '1000' }] });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
    const readyOf = (found: V1Pod) => found.status?.conditions?.find((condition) => condition.type === 'Ready')?.status;
    const early = await until(() => core.readNamespacedPod({ name: 'ready-pod', namespace: NAMESPACE }), (found) => found.status?.initContainerStatuses !== undefined);
    expect(readyOf(early)).toBe('False');
    expect(early.status?.initContainerStatuses?.[0]).toMatchObject({ name: 'gatehouse-sidecar', ready: false });
    const ready = await until(() => core.readNamespacedPod({ name: 'ready-pod', namespace: NAMESPACE }), (found) => readyOf(found) === 'True');
    expect(ready.status?.phase).toBe('Running');
    expect(ready.status?.conditions?.find((condition) => condition.type === 'ContainersReady')?.status).toBe('True');
    expect(ready.status?.initContainerStatuses?.[0]).toMatchObject({ started: true, ready: true, restartCount: 0 });
    expect(ready.status?.podIP).toBe('127.0.0.1');
    await core.deleteNamespacedPod({ name: 'ready-pod', namespace: NAMESPACE });
  });

  it('stops the process when the pod is deleted', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: injectedPod({ name: 'delete-pod', namespace: NAMESPACE }) });
    const view = await kubelet.waitForReady(NAMESPACE, 'delete-pod', 15_000);
    const pid = view.pid ?? 0;
    expect(isAlive(pid)).toBe(true);
    await core.deleteNamespacedPod({ name: 'delete-pod', namespace: NAMESPACE });
    expect(await view.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(pid)).toBe(false);
    expect(view.logs()).toContain('terminating');
  });

  it('stops the process on a graceful deletion (deletionTimestamp set) while a finalizer holds the pod', async () => {
    const body = injectedPod({ name: 'finalizer-pod', namespace: NAMESPACE });
    body.metadata = { ...body.metadata, finalizers: ['example.com/hold'] };
    await core.createNamespacedPod({ namespace: NAMESPACE, body });
    const view = await kubelet.waitForReady(NAMESPACE, 'finalizer-pod', 15_000);
    await core.deleteNamespacedPod({ name: 'finalizer-pod', namespace: NAMESPACE });
    expect(await view.exited).toEqual({ code: 0, signal: null });
    const held = await core.readNamespacedPod({ name: 'finalizer-pod', namespace: NAMESPACE });
    expect(held.metadata?.deletionTimestamp).toBeDefined();
    await core.patchNamespacedPod(
      { name: 'finalizer-pod', namespace: NAMESPACE, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
    );
    await until(() => core.listNamespacedPod({ namespace: NAMESPACE }), (list) => !list.items.some((item) => item.metadata?.name === 'finalizer-pod'));
  });

  it('restarts a sidecar that dies and reports the restarts in the pod status', async () => {
    const pod = injectedPod({ name: 'crash-pod', namespace: NAMESPACE, extraEnv: [{ name: 'FAKE_EXIT_AFTER_MS', value: '500' }] });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
    const restarted = await until(
      () => core.readNamespacedPod({ name: 'crash-pod', namespace: NAMESPACE }),
      (found) => (found.status?.initContainerStatuses?.[0]?.restartCount ?? 0) >= 1,
    );
    expect(restarted.status?.initContainerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(3);
    expect(kubelet.podProcess(NAMESPACE, 'crash-pod')?.state?.restartCount).toBeGreaterThanOrEqual(1);
    await core.deleteNamespacedPod({ name: 'crash-pod', namespace: NAMESPACE });
  });

  it('fails a pod whose image has no local command, saying why', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: injectedPod({ name: 'unmapped-pod', namespace: NAMESPACE, image: 'example/unknown:1' }) });
    const failed = await until(() => core.readNamespacedPod({ name: 'unmapped-pod', namespace: NAMESPACE }), (found) => found.status?.phase === 'Failed');
    expect(failed.status?.reason).toBe('ErrImageNeverPull');
    expect(failed.status?.message).toContain('example/unknown:1');
    await expect(kubelet.waitForReady(NAMESPACE, 'unmapped-pod', 1000)).rejects.toThrow(/did not become ready.*ErrImageNeverPull/s);
    await core.deleteNamespacedPod({ name: 'unmapped-pod', namespace: NAMESPACE });
  });

  it('leaves pods without an injected sidecar alone', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: { metadata: { name: 'plain-pod' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(kubelet.podProcess(NAMESPACE, 'plain-pod')).toBeUndefined();
    expect((await core.readNamespacedPod({ name: 'plain-pod', namespace: NAMESPACE })).status?.phase).not.toBe('Running');
    await expect(kubelet.waitForReady(NAMESPACE, 'plain-pod', 200)).rejects.toThrow(/has not seen it/);
  });

  it('runs images as the real gatehouse CLI from dist/ by default, with the pod\'s args', async () => {
    const namespace = 'default-image';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'ci-runner' } } });
    const defaultKubelet = await startStandInKubelet({ kubeconfigPath: path.join(dir, 'kubeconfig'), repoRoot, namespace, logger: silentLogger(), restartBackoffMs: 100 });
    try {
      // Without GATEHOUSE_CONTROL_PLANE the real `gatehouse sidecar` refuses to start and says why.
      await core.createNamespacedPod({ namespace, body: injectedPod({ name: 'cli-pod', namespace, args: ['sidecar'] }) });
      const view = await until(() => defaultKubelet.podProcess(namespace, 'cli-pod'), (found) => (found?.logs() ?? '').includes('GH_ERR_'));
      expect(view?.logs()).toContain('GH_ERR_SIDECAR_NO_CONTROL_PLANE');
    } finally {
      await defaultKubelet.stop();
    }
  });
});
