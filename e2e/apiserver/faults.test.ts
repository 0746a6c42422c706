// Fault injection: 429 with Retry-After (which kubectl honours and retries), 409 and 500 for matching
// requests only, delayed responses, dropped watches.
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, type KubeTools } from './kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';

let server: LoopbackApiServer;
let tools: KubeTools;
let core: CoreV1Api;
let kc: KubeConfig;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server);
  kc = new KubeConfig();
  kc.loadFromFile(tools.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
});

afterEach(() => server.faults.reset());

afterAll(async () => {
  await tools.cleanup();
  await server.close();
});

const isConfigMapList = (request: { method: string; path: string }): boolean => request.method === 'GET' && request.path === '/api/v1/namespaces/default/configmaps';

describe('fault injection', () => {
  it('answers 429 with Retry-After, which kubectl waits out and retries', async () => {
    server.faults.failNext(2, 429, isConfigMapList, 1);
    const error = await core.listNamespacedConfigMap({ namespace: 'default' }).catch((caught: unknown) => caught) as { code: number; headers: Record<string, string> };
    expect(error.code).toBe(429);
    expect(error.headers['retry-after']).toBe('1');
    const started = Date.now();
    const result = await tools.kubectl(['get', 'configmaps', '-n', 'default', '-v=6']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('429');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('fails only the matching requests, as many times as asked', async () => {
    server.faults.failNext(1, 500, isConfigMapList);
    await expect(core.readNamespace({ name: 'default' })).resolves.toBeDefined();
    await expect(core.listNamespacedConfigMap({ namespace: 'default' })).rejects.toMatchObject({ code: 500 });
    await expect(core.listNamespacedConfigMap({ namespace: 'default' })).resolves.toBeDefined();
    server.faults.failNext(1, 409, (request) => request.method === 'POST');
    await expect(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'c' } } })).rejects.toMatchObject({ code: 409 });
    await expect(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'c' } } })).resolves.toBeDefined();
  });

  it('delays responses', async () => {
    server.faults.delayResponses(300, isConfigMapList);
    const started = Date.now();
    await core.listNamespacedConfigMap({ namespace: 'default' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    const quick = Date.now();
    await core.readNamespace({ name: 'default' });
    expect(Date.now() - quick).toBeLessThan(280);
  });

  it('drops open watches', async () => {
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch('/api/v1/namespaces/default/configmaps', {}, () => undefined, resolve);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.faults.dropWatches();
    await expect(ended).resolves.toBeNull();
  });
});
