// Real HTTP(S) servers on 127.0.0.1 port 0 for the identity tests: a JWKS endpoint, an OIDC issuer
// (discovery + JWKS), and an API server answering TokenReview. Each records what it was asked so a
// test can check what was sent (and that nothing was sent when nothing should be).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface Reply {
  readonly status: number;
  /** Objects are sent as JSON, strings as they are. */
  readonly body?: unknown;
  /** Never answer (to test timeouts). */
  readonly hang?: boolean;
}

export type Handler = (request: RecordedRequest) => Reply | Promise<Reply>;

export interface LoopbackServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
}

export async function startLoopbackServer(handler: Handler, tls?: TlsMaterial): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  let current = handler;
  const listener = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    void serve(incoming, outgoing, requests, current);
  };
  const server: Server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    handle(next: Handler): void {
      current = next;
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(incoming: IncomingMessage, outgoing: ServerResponse, requests: RecordedRequest[], handler: Handler): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  const request = { method: incoming.method ?? '', path: incoming.url ?? '', headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8') };
  requests.push(request);
  const reply = await handler(request);
  if (reply.hang) return;
  const json = typeof reply.body !== 'string';
  outgoing.writeHead(reply.status, { 'content-type': json ? 'application/json' : 'text/plain' });
  outgoing.end(reply.body === undefined ? '' : json ? JSON.stringify(reply.body) : reply.body);
}

let certificate: Promise<TlsMaterial> | undefined;

/** A self-signed certificate for 127.0.0.1 (made once per test file with openssl), used as its own CA. */
export function loopbackCertificate(): Promise<TlsMaterial> {
  certificate ??= createCertificate();
  return certificate;
}

export async function createCertificate(): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-identity-'));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    return { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Serves `keys` as a JWKS at /jwks; `setKeys` rotates what is served. */
export async function startJwksServer(keys: readonly object[], tls?: TlsMaterial): Promise<LoopbackServer & { setKeys(next: readonly object[]): void; jwksUrl: string }> {
  let served = keys;
  const server = await startLoopbackServer(
    (request) => (request.path === '/jwks' ? { status: 200, body: { keys: served } } : { status: 404, body: 'not found' }),
    tls,
  );
  return Object.assign(server, {
    jwksUrl: `${server.url}/jwks`,
    setKeys(next: readonly object[]): void {
      served = next;
    },
  });
}
