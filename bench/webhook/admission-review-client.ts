// Sends AdmissionReviews straight to the operator's webhook, as the API server does, and times each:
// the webhook's latency as the API server sees it, without the loopback API server's own request
// handling in the number. Two transports: HTTP/2 (one TLS session multiplexing every concurrent
// review, what the kube-apiserver's Go client negotiates when the server offers h2) and HTTP/1.1
// keep-alive with one connection per review in flight.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { V1Pod } from '@kubernetes/client-node';
import { podCreationReview } from '../../operator/admission/admission-review.js';
import { summarize, type LatencySummary } from './latency.js';

export interface DirectBurstResult {
  readonly latency: LatencySummary;
  /** Reviews answered allowed with a JSON patch (the sidecar injected). */
  readonly patched: number;
}

/** The AdmissionReview the API server would send for creating `pod` in `namespace`. */
export function review(namespace: string, pod: V1Pod): string {
  return podCreationReview(namespace, pod, { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] });
}

interface Reply {
  readonly status: number;
  readonly text: string;
}

/** How reviews reach the webhook; each transport keeps its connections across bursts, as the API server does. */
export interface WebhookTransport {
  readonly protocol: 'h2' | 'http1';
  post(path: string, body: string): Promise<Reply>;
  close(): void;
}

function post(agent: https.Agent, url: URL, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.once('error', reject);
    request.end(body);
  });
}

/**
 * Up to `connections` keep-alive connections to the webhook, reused across bursts as the API server
 * reuses its connections, so a burst measures reviews rather than TLS handshakes.
 */
export function http1Transport(webhookUrl: string, caPem: string, connections: number): WebhookTransport {
  const agent = new https.Agent({ keepAlive: true, ca: caPem, maxSockets: connections });
  return {
    protocol: 'http1',
    post: (path, body) => post(agent, new URL(path, webhookUrl), body),
    close: () => agent.destroy(),
  };
}

/**
 * One HTTP/2 session, reopened if the server ends it (idle timeout, GOAWAY); every review is a stream
 * on it. The ALPN offer is h2 only, so a server without HTTP/2 fails loudly instead of measuring HTTP/1.1.
 */
export function h2Transport(webhookUrl: string, caPem: string): WebhookTransport {
  let session: http2.ClientHttp2Session | undefined;
  const open = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    // Go's HTTP/2 transport (the kube-apiserver's) advertises 4 MiB per stream and 1 GiB per connection.
    const opened = http2.connect(webhookUrl, { ca: caPem, settings: { initialWindowSize: 4 * 1024 * 1024 } });
    opened.once('connect', () => opened.setLocalWindowSize(1024 * 1024 * 1024));
    opened.on('error', () => undefined); // each stream reports its own failure
    session = opened;
    return opened;
  };
  return {
    protocol: 'h2',
    post: (path, body) => new Promise((resolve, reject) => {
      const stream = open().request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      let status = 0;
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (headers) => { status = Number(headers[':status']); });
      stream.on('data', (chunk: string) => { text += chunk; });
      stream.on('end', () => resolve({ status, text }));
      stream.on('error', reject);
      stream.end(body);
    }),
    close: () => session?.close(),
  };
}

/** Sends one review per pod, all at once, and times each round trip. */
export async function directBurst(transport: WebhookTransport, namespace: string, pods: readonly V1Pod[]): Promise<DirectBurstResult> {
  const timings: number[] = [];
  let patched = 0;
  await Promise.all(pods.map(async (pod) => {
    const body = review(namespace, pod);
    const started = performance.now();
    const { status, text } = await transport.post('/mutate-pods', body);
    timings.push(performance.now() - started);
    if (status !== 200) throw new Error(`webhook answered HTTP ${status}: ${text.slice(0, 500)}`);
    const response = (JSON.parse(text) as { response?: { allowed?: boolean; patch?: string } }).response;
    if (response?.allowed && response.patch) patched++;
  }));
  return { latency: summarize(timings), patched };
}

/**
 * The same burst sent by h2load (nghttp2's load generator, Debian package nghttp2-client): `count`
 * copies of `body` as concurrent streams on one HTTP/2 connection, timed per stream from submission
 * to the end of the answer. A C client spends a few microseconds per request where node's HTTP/2
 * client spends 0.1-0.4 ms, which on a 2-core machine otherwise lands in the webhook's p99 (the
 * kube-apiserver is a Go client, closer to h2load). The connection is new each time: its TLS
 * handshake comes before the first stream and is not in the timings. h2load does not show the
 * answers' bodies, so the caller checks one answer to the same body another way.
 */
export async function h2loadBurst(url: string, body: string, count: number): Promise<LatencySummary> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-h2load-'));
  try {
    const bodyFile = path.join(dir, 'review.json');
    const logFile = path.join(dir, 'requests.tsv');
    await writeFile(bodyFile, body);
    const args = ['-n', String(count), '-c', '1', '-m', String(count), '-d', bodyFile, '-H', 'content-type: application/json', '--log-file', logFile, url];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('h2load', args, { timeout: 60_000 }, (error, out, err) => {
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error('h2load is not installed: apt-get install nghttp2-client (or leave h2load out of --protocols)'));
        else if (error) reject(new Error(`h2load failed: ${err || out || error.message}`));
        else resolve(out);
      });
    });
    // h2load falls back to HTTP/1.1 only when told to; anything else here is a server without h2.
    if (!/Application protocol: h2\b/.test(stdout)) throw new Error(`h2load did not negotiate h2:\n${stdout}`);
    // Columns: start (µs since the epoch), HTTP status, µs until the end of the answer.
    const rows = (await readFile(logFile, 'utf8')).trim().split('\n').filter(Boolean).map((line) => line.split('\t').map(Number));
    const failed = rows.filter((row) => row[1] !== 200);
    if (rows.length !== count || failed.length > 0) {
      throw new Error(`h2load: ${rows.length} of ${count} requests logged, ${failed.length} not HTTP 200 (statuses ${[...new Set(failed.map((row) => row[1]))].join(', ')})\n${stdout}`);
    }
    return summarize(rows.map((row) => row[2]! / 1000));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
