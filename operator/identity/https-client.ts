// The one small HTTP client identity verification uses (JWKS, OpenID discovery, TokenReview):
// node:https with an explicit CA, a hard deadline, bounded bodies and no redirects. Global fetch
// cannot take a per-endpoint CA without undici internals, and the cluster's endpoints need one.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { FetchImplementation } from 'jose';
import { GatehouseError } from '../../api/errors.js';

export interface HttpsClientOptions {
  /** PEM CA bundle trusted for this endpoint; the system roots when absent. */
  readonly ca?: string | Buffer;
  /** Sent as `Authorization: Bearer`; called per request so a rotated token file is picked up. */
  readonly bearerToken?: () => string | Promise<string>;
  /** Allows plain http to 127.0.0.1 / ::1 only: for tests, never for a real endpoint. */
  readonly allowInsecureLoopback?: boolean;
  /** Deadline for the whole exchange. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Larger answers are cut off and refused. Default 1 MiB: key sets and reviews are small. */
  readonly maxBodyBytes?: number;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal?: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]']);

/** Parses `url` and refuses anything but https (or loopback http when explicitly allowed). */
export function checkedUrl(url: string | URL, allowInsecureLoopback = false): URL {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && allowInsecureLoopback && LOOPBACK_HOSTS.has(parsed.hostname)) return parsed;
  throw new GatehouseError('GH_ERR_IDENTITY_INSECURE_URL', { url: parsed.origin + parsed.pathname });
}

/** One request; rejects with a plain Error whose message is safe to show (no headers, no body). */
export async function sendRequest(url: URL, request: HttpRequest, options: HttpsClientOptions = {}): Promise<HttpResponse> {
  const target = checkedUrl(url, options.allowInsecureLoopback);
  const headers: Record<string, string> = { ...request.headers };
  if (options.bearerToken) headers.authorization = `Bearer ${await options.bearerToken()}`;
  if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
  return exchange(target, { ...request, headers }, options);
}

async function exchange(url: URL, request: HttpRequest, options: HttpsClientOptions): Promise<HttpResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
  try {
    const incoming = await send(url, request, options.ca, signal);
    const body = await readBody(incoming, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    return { status: incoming.statusCode ?? 0, headers: incoming.headers, body };
  } catch (error) {
    // The caller's own abort reason (jose's timeout) wins, so its error handling recognises it.
    if (request.signal?.aborted) throw request.signal.reason;
    if (deadline.aborted) throw timeoutError(timeoutMs);
    throw error;
  }
}

function send(url: URL, request: HttpRequest, ca: string | Buffer | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const open = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const outgoing = open(url, { method: request.method, headers: request.headers, ca, signal });
    outgoing.on('response', resolve);
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });
}

async function readBody(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of incoming) {
    received += (chunk as Buffer).length;
    // Leaving the loop destroys the stream, so an oversized answer is not read to its end.
    if (received > maxBytes) throw new Error(`response larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

// jose turns an error named TimeoutError into its JWKSTimeout, so ours reads the same way.
function timeoutError(timeoutMs: number): Error {
  const error = new Error(`no answer within ${timeoutMs} ms`);
  error.name = 'TimeoutError';
  return error;
}

/** GETs a JSON document, requiring 200; the error message names what went wrong, never the body. */
export async function getJson(url: URL, options: HttpsClientOptions = {}): Promise<unknown> {
  const response = await sendRequest(url, { method: 'GET', headers: { accept: 'application/json' } }, options);
  if (response.status !== 200) throw new Error(`HTTP ${response.status} from ${url.origin}${url.pathname}`);
  return parseJson(response.body);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new Error('the answer is not JSON');
  }
}

/** A fetch for jose's createRemoteJWKSet ([customFetch]) that goes through this client. */
export function joseFetch(options: HttpsClientOptions): FetchImplementation {
  return async (url, init) => {
    const headers: Record<string, string> = {};
    init.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const response = await sendRequest(new URL(url), { method: 'GET', headers, signal: init.signal }, options);
    return new Response(response.status === 204 || response.status === 304 ? null : new Uint8Array(response.body), {
      status: response.status,
      headers: { 'content-type': String(response.headers['content-type'] ?? 'application/json') },
    });
  };
}
