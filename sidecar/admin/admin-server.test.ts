import { createSidecarMetrics } from '../metrics/sidecar-metrics.js';
import { startAdminServer, type AdminServer } from './admin-server.js';

describe('admin server', () => {
  let server: AdminServer;
  let ready: string | undefined = 'no policy yet';
  const metrics = createSidecarMetrics({ defaultMetrics: false });

  beforeAll(async () => {
    server = await startAdminServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, notReadyReason: () => ready });
  });
  afterAll(() => server.close());

  const get = (path: string) => fetch(`http://127.0.0.1:${server.port}${path}`);

  test('healthz is always ok; readyz follows the predicate', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('no policy yet');
    ready = undefined;
    expect((await get('/readyz')).status).toBe(200);
  });

  test('metrics are served in the Prometheus text format', async () => {
    metrics.blocked.inc({ resource: 'orders-db', identity: 'ci-runner', rule: 'ci-read-only/no-ddl' });
    const response = await get('/metrics');
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(await response.text()).toContain(
      'gatehouse_sidecar_blocked_statements_total{resource="orders-db",identity="ci-runner",rule="ci-read-only/no-ddl"} 1',
    );
  });

  test('unknown paths are 404 and other methods 405', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
