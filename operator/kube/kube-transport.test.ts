// The HTTP layer under KubeClient against plain HTTP servers on 127.0.0.1 that misbehave on purpose.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isGatehouseError } from '../../api/errors.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type WatchEvent } from './kube-client.js';
import { kubeErrorStatus } from './kube-errors.js';
import { failure } from '../../testing/async-checks.js';
import { tokenKubeConfig } from './testing/token-kubeconfig.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Served {
  url: string;
  close(): Promise<void>;
}

async function serve(handler: http.RequestListener): Promise<Served> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function clientFor(url: string, requestTimeoutMs = 2000): KubeClient {
  return createKubeClient({ kubeConfig: tokenKubeConfig(url, 't0ken'), requestTimeoutMs });
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => resolve(body));
  });
}

describe('KubeClient transport', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setup(handler: http.RequestListener, requestTimeoutMs?: number): Promise<KubeClient> {
    const served = await serve(handler);
    const client = clientFor(served.url, requestTimeoutMs);
    cleanup.push(() => served.close(), () => client.close?.());
    return client;
  }

  test('sends the bearer token, the right path and content type, and a DELETE body with its length', async () => {
    const seen: string[] = [];
    const client = await setup(async (request, response) => {
      const body = await readBody(request);
      seen.push(`${request.method} ${request.url} ${request.headers.authorization} ${request.headers['content-type'] ?? '-'} ${request.headers['content-length'] ?? '-'} ${body}`);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ metadata: { name: 'x' } }));
    });
    await client.delete(RESOURCE_TYPES.pods, 'ns', 'p', { propagationPolicy: 'Foreground' });
    await client.patch(RESOURCE_TYPES.accessPolicies, 'ns', 'ap', [{ op: 'remove', path: '/spec/x' }], 'json');
    await client.patch(RESOURCE_TYPES.namespaces, undefined, 'n', { spec: {} }, 'apply', { fieldManager: 'gh', force: true });
    const line = (head: string, type: string, body: string): string => `${head} Bearer t0ken ${type} ${Buffer.byteLength(body)} ${body}`;
    expect(seen).toEqual([
      line('DELETE /api/v1/namespaces/ns/pods/p', 'application/json', JSON.stringify({ apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Foreground' })),
      line('PATCH /apis/gatehouse.dev/v1alpha1/namespaces/ns/accesspolicies/ap', 'application/json-patch+json', '[{"op":"remove","path":"/spec/x"}]'),
      line('PATCH /api/v1/namespaces/n?fieldManager=gh&force=true', 'application/apply-patch+yaml', '{"apiVersion":"v1","kind":"Namespace","spec":{}}'),
    ]);
  });

  test('a pooled connection the server closed is retried once on a fresh one', async () => {
    const sockets = new Map<Socket, number>();
    let connections = 0;
    const client = await setup((request, response) => {
      const count = (sockets.get(request.socket) ?? 0) + 1;
      if (count === 1) connections += 1;
      sockets.set(request.socket, count);
      // The second request on a kept-alive connection meets a server that just closed it.
      if (count === 2) {
        request.socket.destroy();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' }).end(JSON.stringify({ metadata: { name: 'p' } }));
    });
    expect((await client.get(RESOURCE_TYPES.pods, 'ns', 'p'))?.metadata.name).toBe('p');
    expect((await client.get(RESOURCE_TYPES.pods, 'ns', 'p'))?.metadata.name).toBe('p');
    expect(connections).toBe(2);
  });

  test('a non-JSON error body is kept as an excerpt, with the status', async () => {
    const client = await setup((_request, response) => {
      response.writeHead(503, { 'content-type': 'text/html' }).end('<html>upstream unavailable</html>');
    });
    const error = await failure(client.list(RESOURCE_TYPES.pods, {}));
    expect(isGatehouseError(error, 'GH_ERR_KUBE_REQUEST_FAILED')).toBe(true);
    expect(kubeErrorStatus(error)).toBe(503);
    expect((error as Error).message).toContain('upstream unavailable');
  });

  test('429 is GH_ERR_KUBE_THROTTLED; a non-JSON success body is GH_ERR_KUBE_BAD_RESPONSE', async () => {
    let calls = 0;
    const client = await setup((_request, response) => {
      calls += 1;
      if (calls === 1) response.writeHead(429).end(JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'slow down' }));
      else response.writeHead(200).end('not json');
    });
    const throttled = await failure(client.get(RESOURCE_TYPES.pods, 'ns', 'p'));
    expect(isGatehouseError(throttled, 'GH_ERR_KUBE_THROTTLED')).toBe(true);
    expect(isGatehouseError(await failure(client.get(RESOURCE_TYPES.pods, 'ns', 'p')), 'GH_ERR_KUBE_BAD_RESPONSE')).toBe(true);
  });

  test('a request that gets no answer times out; a closed port is unreachable', async () => {
    const client = await setup(() => undefined, 150);
    const timedOut = await failure(client.get(RESOURCE_TYPES.pods, 'ns', 'p'));
    expect(isGatehouseError(timedOut, 'GH_ERR_KUBE_TIMEOUT')).toBe(true);
    const closed = await serve(() => undefined);
    await closed.close();
    const nowhere = clientFor(closed.url);
    const unreachable = await failure(nowhere.get(RESOURCE_TYPES.pods, 'ns', 'p'));
    nowhere.close?.();
    expect(isGatehouseError(unreachable, 'GH_ERR_KUBE_UNREACHABLE')).toBe(true);
  });

  test('watch reassembles lines split across chunks and passes watch parameters', async () => {
    let query = '';
    const client = await setup((request, response) => {
      query = request.url ?? '';
      response.writeHead(200, { 'content-type': 'application/json' });
      const line = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'split', resourceVersion: '7' } } });
      response.write(line.slice(0, 10));
      setTimeout(() => response.end(`${line.slice(10)}\n${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } })}`), 20);
    });
    const events: WatchEvent[] = [];
    const done = new Promise<Error | undefined>((resolve) => {
      void client.watch(RESOURCE_TYPES.pods, { namespace: 'ns', resourceVersion: '5', allowBookmarks: true, timeoutSeconds: 60 }, (e) => events.push(e), resolve);
    });
    expect(await done).toBeUndefined();
    expect(events.map((e) => `${e.type} ${e.object.metadata.resourceVersion}`)).toEqual(['ADDED 7', 'BOOKMARK 9']);
    expect(query).toBe('/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=60');
  });

  test('watch: an HTTP 410 ends with GH_ERR_KUBE_GONE; a connection cut mid-stream ends with an error', async () => {
    let calls = 0;
    const client = await setup((request, response) => {
      calls += 1;
      if (calls === 1) {
        response.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'too old' }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } })}\n`);
      setTimeout(() => request.socket.destroy(), 20);
    });
    const watchOnce = (): Promise<Error | undefined> =>
      new Promise((resolve) => void client.watch(RESOURCE_TYPES.pods, { resourceVersion: '1', allowBookmarks: false }, () => undefined, resolve));
    const gone = await watchOnce();
    expect(isGatehouseError(gone, 'GH_ERR_KUBE_GONE')).toBe(true);
    expect(kubeErrorStatus(gone)).toBe(410);
    const cut = await watchOnce();
    expect(isGatehouseError(cut, 'GH_ERR_KUBE_UNREACHABLE')).toBe(true);
  });

  test('watch abort before the server answers ends it at once, and no event follows', async () => {
    const client = await setup(async (_request, response) => {
      await delay(100);
      if (!response.destroyed) response.writeHead(200).end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'late' } } })}\n`);
    });
    const events: WatchEvent[] = [];
    let doneCalls = 0;
    const handle = await client.watch(RESOURCE_TYPES.pods, { resourceVersion: '1', allowBookmarks: false }, (e) => events.push(e), () => (doneCalls += 1));
    handle.abort();
    handle.abort();
    await delay(200);
    expect(doneCalls).toBe(1);
    expect(events).toEqual([]);
  });
});
