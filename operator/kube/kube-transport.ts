// HTTP(S) to the Kubernetes API server as a kubeconfig describes it. @kubernetes/client-node's
// KubeConfig supplies the server, TLS material and credentials (refreshed per request, so rotated
// projected tokens and exec plugins keep working); we send the requests ourselves because the
// generic layer needs what the generated clients hide: any group/version/plural, the /status
// subresource, every patch content type, and a watch stream that can be aborted before its headers.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { KubeConfig } from '@kubernetes/client-node';
import { GatehouseError } from '../../api/errors.js';
import { httpStatusError, statusBody, type KubeRequestContext } from './kube-errors.js';

export type QueryValue = string | number | boolean | undefined;

export interface TransportRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the server URL, starting with /api or /apis. */
  readonly path: string;
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly context: KubeRequestContext;
}

export interface TransportResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface StreamHandlers {
  /** One non-empty line of the response body. */
  onLine(line: string): void;
  /** Called exactly once: no error for a clean end or an abort, the mapped error otherwise. */
  onClose(error?: Error): void;
}

/** How much of a non-JSON error body goes into a message: enough to recognise it, not a page. */
const ERROR_BODY_EXCERPT = 300;

export class KubeTransport {
  readonly server: string;
  private readonly agents = new Map<string, http.Agent>();

  constructor(
    private readonly config: KubeConfig,
    private readonly requestTimeoutMs: number,
  ) {
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new GatehouseError('GH_ERR_KUBE_CONFIG', { detail: 'the kubeconfig has no current cluster' });
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** Sends one request and reads the whole answer; statuses >= 300 reject with the mapped error. */
  async request(request: TransportRequest): Promise<TransportResponse> {
    const options = await this.requestOptions(request);
    const { status, text } = await this.send(request, options);
    if (status >= 300) throw httpStatusError(status, statusBody(parseLenient(text)), request.context);
    if (text.length === 0) return { status, body: undefined };
    try {
      return { status, body: JSON.parse(text) as unknown };
    } catch (error) {
      throw new GatehouseError('GH_ERR_KUBE_BAD_RESPONSE', { ...contextDetails(request.context), detail: (error as Error).message });
    }
  }

  /**
   * Opens a long-lived GET whose body is read line by line (a watch). Never rejects: every failure,
   * including building the request, reaches handlers.onClose exactly once.
   */
  async stream(request: TransportRequest, handlers: StreamHandlers): Promise<{ abort(): void }> {
    let closed = false;
    let outgoing: http.ClientRequest | undefined;
    const close = (error?: Error): void => {
      if (closed) return;
      closed = true;
      outgoing?.destroy();
      handlers.onClose(error);
    };
    const handle = { abort: () => close() };
    let options: https.RequestOptions;
    try {
      options = await this.requestOptions(request);
    } catch (error) {
      close(error as Error);
      return handle;
    }
    if (closed) return handle;
    outgoing = this.open(request, options, (response) => {
      if (response.statusCode !== 200) {
        readAll(response).then(
          (text) => close(httpStatusError(response.statusCode ?? 0, statusBody(parseLenient(text)), request.context)),
          (error: Error) => close(unreachable(request.context, error)),
        );
        return;
      }
      readLines(response, handlers.onLine, close, request.context);
    });
    outgoing.on('error', (error) => close(unreachable(request.context, error)));
    outgoing.end();
    return handle;
  }

  /** Drops pooled connections, so a process (or a test) can exit. */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private async requestOptions(request: TransportRequest): Promise<https.RequestOptions> {
    const options: https.RequestOptions = {};
    try {
      await this.config.applyToHTTPSOptions(options);
    } catch (error) {
      throw new GatehouseError('GH_ERR_KUBE_CONFIG', { detail: (error as Error).message }, { cause: error });
    }
    const base = options.headers !== undefined && !Array.isArray(options.headers) ? (options.headers as http.OutgoingHttpHeaders) : {};
    const headers: http.OutgoingHttpHeaders = { ...base, Accept: 'application/json' };
    if (request.body !== undefined) headers['Content-Type'] = request.contentType ?? 'application/json';
    if (options.auth !== undefined && options.auth !== null) {
      headers.Authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    }
    return { method: request.method, headers, agent: this.agentFor(options) };
  }

  /** One keep-alive agent per distinct TLS identity; client-node would build a new one per request. */
  private agentFor(options: https.RequestOptions): http.Agent | undefined {
    if (this.config.getCurrentCluster()?.proxyUrl) return options.agent instanceof http.Agent ? options.agent : undefined;
    const plain = this.server.startsWith('http:');
    const key = createHash('sha256')
      .update(JSON.stringify([plain, options.rejectUnauthorized, options.servername]))
      .update(String(options.ca ?? ''))
      .update(String(options.cert ?? ''))
      .update(String(options.key ?? ''))
      .digest('hex');
    let agent = this.agents.get(key);
    if (agent === undefined) {
      agent = plain
        ? new http.Agent({ keepAlive: true })
        : new https.Agent({
            keepAlive: true,
            ca: options.ca,
            cert: options.cert,
            key: options.key,
            rejectUnauthorized: options.rejectUnauthorized,
            servername: options.servername,
          });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private open(request: TransportRequest, options: https.RequestOptions, onResponse: (response: http.IncomingMessage) => void): http.ClientRequest {
    const url = new URL(this.server + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const send = url.protocol === 'http:' ? http.request : https.request;
    return send(url, options, onResponse);
  }

  private async send(request: TransportRequest, options: https.RequestOptions): Promise<{ status: number; text: string }> {
    try {
      return await this.sendOnce(request, options);
    } catch (error) {
      // A pooled connection the server closed while idle fails before the server read anything;
      // Node's documented remedy is to send once more on a fresh connection.
      if (!(error instanceof StaleConnectionError)) throw error;
      return this.sendOnce(request, options);
    }
  }

  private sendOnce(request: TransportRequest, options: https.RequestOptions): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const outgoing = this.open(request, options, (response) => {
        readAll(response).then((text) => resolve({ status: response.statusCode ?? 0, text }), (error: Error) => reject(unreachable(request.context, error)));
      });
      const timer = setTimeout(() => {
        outgoing.destroy();
        reject(new GatehouseError('GH_ERR_KUBE_TIMEOUT', { ...contextDetails(request.context), timeoutMs: this.requestTimeoutMs }));
      }, this.requestTimeoutMs);
      outgoing.on('close', () => clearTimeout(timer));
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        const stale = outgoing.reusedSocket && error.code === 'ECONNRESET';
        reject(stale ? new StaleConnectionError() : unreachable(request.context, error));
      });
      if (request.body === undefined) {
        outgoing.end();
        return;
      }
      // Node sends a DELETE body neither chunked nor with a length unless told: say how long it is.
      const payload = Buffer.from(JSON.stringify(request.body), 'utf8');
      outgoing.setHeader('Content-Length', payload.length);
      outgoing.end(payload);
    });
  }
}

/** Internal: the request went out on a kept-alive connection the server had already closed. */
class StaleConnectionError extends Error {}

function contextDetails(context: KubeRequestContext): Record<string, string> {
  return { verb: context.verb, resource: context.resource, server: context.server };
}

function unreachable(context: KubeRequestContext, error: Error): GatehouseError {
  return new GatehouseError('GH_ERR_KUBE_UNREACHABLE', { ...contextDetails(context), detail: error.message }, { cause: error });
}

/** Error bodies are usually a Status, but proxies answer with HTML or text; keep an excerpt then. */
function parseLenient(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.slice(0, ERROR_BODY_EXCERPT).trim() || 'empty body' };
  }
}

function readAll(response: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('aborted', () => reject(new Error('response aborted')));
  });
}

function readLines(response: http.IncomingMessage, onLine: (line: string) => void, close: (error?: Error) => void, context: KubeRequestContext): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  response.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line.length > 0) onLine(line);
      newline = pending.indexOf('\n');
    }
  });
  response.on('end', () => {
    const rest = (pending + decoder.end()).trim();
    if (rest.length > 0) onLine(rest);
    close();
  });
  response.on('error', (error) => close(unreachable(context, error)));
  // A server that drops the connection mid-body ends the stream without 'end'.
  response.on('close', () => close(response.complete ? undefined : unreachable(context, new Error('connection closed mid-stream'))));
}
