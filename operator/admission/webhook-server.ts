// The admission webhooks' HTTPS server: AdmissionReview v1 at /mutate-pods (sidecar injection) and
// /validate-gatehouse (the checks of `gatehouse validate`), plus /healthz and /readyz. The serving
// certificate comes from a CertificateSource and is swapped in place when it rotates. What happens
// when a decision cannot be made is configured per webhook (fail closed by default) and documented
// in docs/admission.md; the webhook configuration's failurePolicy governs the API server's side.
// It speaks HTTP/2 (ALPN h2), which the kube-apiserver's Go client picks to multiplex concurrent
// reviews over one connection, and HTTP/1.1 for clients that do not offer h2.
import { constants as h2, createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { CertificateSource } from '../certs/certificate-source.js';
import { createAdmissionMetrics, type AdmissionMetrics, type AdmissionOutcome, type AdmissionWebhook } from './admission-metrics.js';
import {
  allow,
  deny,
  encodeAdmissionReview,
  parseAdmissionReview,
  type AdmissionRequest,
  type AdmissionResponse,
} from './admission-review.js';
import {
  describeOtherProblem,
  describeOwnProblem,
  GATEHOUSE_KINDS,
  validateChange,
  type ClusterView,
} from './gatehouse-validation.js';
import { API_GROUP } from '../../api/kinds/kinds.js';
import { injectSidecar, type InjectionContext, type PodLike } from './pod-injection.js';
import { ACCESS_REQUEST_STATUS_PATH, reviewAccessRequestStatus, type AccessRequestWebhookOptions } from './access-request-webhook.js';

export const MUTATE_PODS_PATH = '/mutate-pods';
export const VALIDATE_GATEHOUSE_PATH = '/validate-gatehouse';

/** What the injection lookup answers: the context, whose namespace the server fills in from the request. */
export type InjectionLookup = Omit<InjectionContext, 'namespace'> & { readonly namespace?: string };

/** fail-closed: refuse what could not be decided; fail-open: admit it unchanged and log the error. */
export type FailureMode = 'fail-closed' | 'fail-open';

export interface WebhookServerOptions {
  readonly host?: string;
  readonly port?: number;
  readonly tls: CertificateSource;
  /**
   * What the operator knows about a pod's namespace and identity, from its caches. Returns undefined
   * when it cannot tell yet (caches not synced): that counts as "could not decide".
   */
  readonly injection: (pod: PodLike, namespace: string) => InjectionLookup | undefined | Promise<InjectionLookup | undefined>;
  readonly clusterView: ClusterView;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly failureModes?: { readonly mutation?: FailureMode; readonly validation?: FailureMode };
  /** Largest request body accepted; an AdmissionReview carries object and oldObject (default 3 MiB). */
  readonly maxBodyBytes?: number;
  /** Time to decide one review before the failure mode applies (default 8 s, under the API server's 10 s). */
  readonly decisionTimeoutMs?: number;
  /** Time for a client to send the whole request (default 10 s). */
  readonly requestTimeoutMs?: number;
  /**
   * A connection or HTTP/2 session with no traffic for this long is closed (GOAWAY on h2; default 120 s,
   * above the 90 s after which Go's default transport drops idle connections). Idle HTTP/1.1 keep-alive
   * connections close after 5 s, as node:https does by default.
   */
  readonly idleTimeoutMs?: number;
  /** Serves /mutate-accessrequest-status (human decisions on AccessRequests) when set; see access-request-webhook.ts. */
  readonly accessRequests?: AccessRequestWebhookOptions;
}

export interface WebhookServer {
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (up to `drainMs`), then closes every connection. */
  close(drainMs?: number): Promise<void>;
}

const DEFAULT_MAX_BODY = 3 * 1024 * 1024;
/**
 * HTTP/2 receive windows (stream, connection), Go's net/http2 server defaults: with node's 64 KiB a
 * burst of 100 ~4 kB reviews (~400 kB) would pause for WINDOW_UPDATE round trips. A window only lets
 * a client send ahead; each body is still capped by maxBodyBytes.
 */
const H2_STREAM_WINDOW = 1024 * 1024;
const H2_CONNECTION_WINDOW = 1024 * 1024;

/**
 * One request and its answer, whichever protocol carried it. HTTP/2 streams are served with the core
 * stream API rather than node's compatibility layer (Http2ServerRequest/Response): two fewer stream
 * objects per review, on the path 100 concurrent pod creations queue on.
 */
interface Exchange {
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body. */
  readonly body: Readable;
  readonly answered: boolean;
  answer(status: number, contentType: string, text: string): void;
}

function http1Exchange(request: IncomingMessage, response: ServerResponse, closeAfter: boolean): Exchange {
  // Set while draining: keep-alive clients then reconnect to another replica.
  if (closeAfter) response.setHeader('connection', 'close');
  return {
    path: (request.url ?? '/').split('?')[0]!,
    method: request.method ?? '',
    headers: request.headers,
    body: request,
    get answered() { return response.headersSent; },
    answer(status, contentType, text) {
      response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
      response.end(text);
    },
  };
}

function h2Exchange(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Exchange {
  return {
    path: String(headers[h2.HTTP2_HEADER_PATH] ?? '/').split('?')[0]!,
    method: String(headers[h2.HTTP2_HEADER_METHOD] ?? ''),
    headers,
    body: stream,
    get answered() { return stream.headersSent; },
    answer(status, contentType, text) {
      // A client that reset the stream (the API server gave up) gets nothing; there is no one to tell.
      if (stream.destroyed || stream.closed) return;
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: status, 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
      stream.end(text);
    },
  };
}

/** node:http2 with allowHTTP1 hands HTTP/1.1 connections to node:http's parser, which reads these timeouts. */
type DualServer = Http2SecureServer & { requestTimeout: number; headersTimeout: number; keepAliveTimeout: number };

class HttpError extends Error {
  constructor(readonly status: number, readonly error: GatehouseError) {
    super(error.message);
  }
}

interface Decision {
  readonly response: AdmissionResponse;
  readonly outcome: AdmissionOutcome;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const metrics = createAdmissionMetrics(options.registry);
  const handler = new AdmissionHandler(options, metrics);
  // allowHTTP1 makes the ALPN offer h2 then http/1.1; clients without ALPN get HTTP/1.1.
  const settings = { initialWindowSize: H2_STREAM_WINDOW };
  const server = createSecureServer({ ...options.tls.current(), minVersion: 'TLSv1.2', allowHTTP1: true, settings }) as DualServer;
  // node:http2 switches its compatibility layer on for h2 streams when a 'request' listener is added
  // (a 'newListener' hook installed by the constructor). Only HTTP/1.1 connections need 'request'
  // here, so the hook goes first; should a node version install the layer anyway, the HTTP/1.1
  // handler ignores h2 requests and the stream handler still answers each stream once.
  for (const hook of server.listeners('newListener')) server.removeListener('newListener', hook as (...args: unknown[]) => void);
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.httpVersionMajor !== 1) return;
    void handler.serve(http1Exchange(request, response, handler.draining));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    // Errors on a stream (a reset mid-body) reach the body reader; one after the answer has no one to go to.
    stream.on('error', () => undefined);
    void handler.serve(h2Exchange(stream, headers));
  });
  server.requestTimeout = options.requestTimeoutMs ?? 10_000;
  server.headersTimeout = Math.min(server.requestTimeout, 10_000);
  // node:http2 leaves both unset: HTTP/1.1 keep-alive and h2 sessions would then never time out.
  server.keepAliveTimeout = 5_000;
  server.setTimeout(options.idleTimeoutMs ?? 120_000);
  const connections = trackConnections(server);
  const stopWatching = options.tls.onChange((certificate) => {
    // New connections get the new pair; established ones keep the one they negotiated.
    server.setSecureContext({ cert: certificate.cert, key: certificate.key, minVersion: 'TLSv1.2' });
    metrics.certificateReloads.inc();
    options.logger.info('webhook serving certificate reloaded');
  });
  const host = options.host ?? '0.0.0.0';
  await listen(server, host, options.port ?? 9443).catch((error: unknown) => {
    stopWatching();
    throw error;
  });
  const { port } = server.address() as AddressInfo;
  options.logger.info({ host, port }, 'admission webhooks listening');
  return {
    port,
    close: (drainMs = 5_000) => {
      stopWatching();
      return drain(server, connections, handler, drainMs);
    },
  };
}

interface Connections {
  readonly sockets: Set<TLSSocket>;
  readonly sessions: Set<ServerHttp2Session>;
}

/** node:http2 has no closeIdleConnections/closeAllConnections, so draining keeps its own list. */
function trackConnections(server: Http2SecureServer): Connections {
  const connections: Connections = { sockets: new Set(), sessions: new Set() };
  server.on('secureConnection', (socket: TLSSocket) => {
    connections.sockets.add(socket);
    socket.once('close', () => connections.sockets.delete(socket));
  });
  server.on('session', (session: ServerHttp2Session) => {
    session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    connections.sessions.add(session);
    session.once('close', () => connections.sessions.delete(session));
  });
  return connections;
}

function listen(server: Http2SecureServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new GatehouseError('GH_ERR_WEBHOOK_LISTEN', { address: `${host}:${port}`, detail: error.message }, { cause: error })));
    server.listen(port, host, () => resolve());
  });
}

async function drain(server: Http2SecureServer, connections: Connections, handler: AdmissionHandler, drainMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  handler.draining = true;
  // GOAWAY: h2 clients open no new streams here, and the session ends once its streams are answered.
  for (const session of connections.sessions) session.close();
  const deadline = Date.now() + drainMs;
  while (handler.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  for (const session of connections.sessions) session.destroy();
  for (const socket of connections.sockets) socket.destroy();
  await closed;
}

/**
 * Answers admission requests. What it needs of the server's options is copied into its own fields,
 * so every handler has one object shape: V8 optimises the per-review code for the handler of the
 * admission warm-up's private server (admission-warmup.ts), and an options object of another shape
 * in the real server would throw that code back to the interpreter on the first real review.
 */
class AdmissionHandler {
  inFlight = 0;
  /** Set on close: HTTP/1.1 answers then carry `Connection: close` so keep-alive clients reconnect elsewhere. */
  draining = false;
  private readonly metrics: AdmissionMetrics;
  private readonly maxBodyBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly decisionTimeoutMs: number;
  private readonly mutationFailureMode: FailureMode;
  private readonly validationFailureMode: FailureMode;
  private readonly injection: WebhookServerOptions['injection'];
  private readonly clusterView: ClusterView;
  private readonly logger: Logger;
  private readonly accessRequests: AccessRequestWebhookOptions | undefined;

  constructor(options: WebhookServerOptions, metrics: AdmissionMetrics) {
    this.metrics = metrics;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.decisionTimeoutMs = options.decisionTimeoutMs ?? 8_000;
    this.mutationFailureMode = options.failureModes?.mutation ?? 'fail-closed';
    this.validationFailureMode = options.failureModes?.validation ?? 'fail-closed';
    this.injection = options.injection;
    this.clusterView = options.clusterView;
    this.logger = options.logger;
    this.accessRequests = options.accessRequests;
  }

  async serve(exchange: Exchange): Promise<void> {
    this.inFlight++;
    try {
      await this.route(exchange);
    } catch (error) {
      this.logger.error({ err: error }, 'admission handler failed');
      if (!exchange.answered) sendJson(exchange, 500, { code: 'GH_ERR_ADMISSION_UNAVAILABLE', message: 'internal error' });
    } finally {
      this.inFlight--;
    }
  }

  private async route(exchange: Exchange): Promise<void> {
    const { path } = exchange;
    if (path === '/healthz' || path === '/readyz') {
      exchange.answer(200, 'text/plain', 'ok\n');
      return;
    }
    const webhook: AdmissionWebhook | undefined =
      path === MUTATE_PODS_PATH ? 'mutate-pods' : path === VALIDATE_GATEHOUSE_PATH ? 'validate-gatehouse'
        : path === ACCESS_REQUEST_STATUS_PATH && this.accessRequests ? 'accessrequest-status' : undefined;
    if (!webhook) {
      sendJson(exchange, 404, { message: `no webhook at ${path}; use ${MUTATE_PODS_PATH} or ${VALIDATE_GATEHOUSE_PATH}` });
      return;
    }
    let admission: AdmissionRequest;
    try {
      admission = parseAdmissionReview(await this.readBody(exchange));
    } catch (error) {
      const failure = error instanceof HttpError ? error : new HttpError(400, asBadRequest(error));
      this.metrics.requests.inc({ webhook, operation: 'unknown', outcome: 'bad_request' });
      this.logger.warn({ webhook, code: failure.error.code, detail: failure.message }, 'admission request refused');
      sendJson(exchange, failure.status, { code: failure.error.code, message: failure.message });
      return;
    }
    const stopTimer = this.metrics.duration.startTimer({ webhook });
    const decision = await this.decideWithin(webhook, admission);
    stopTimer();
    this.metrics.requests.inc({ webhook, operation: admission.operation, outcome: decision.outcome });
    exchange.answer(200, 'application/json', encodeAdmissionReview(decision.response));
  }

  private readBody(exchange: Exchange): Promise<string> {
    const { body: request, headers } = exchange;
    const contentType = headers['content-type'] ?? '';
    if (exchange.method !== 'POST') return Promise.reject(new HttpError(405, badRequest(`method ${exchange.method} is not allowed; POST the review`)));
    if (!/^application\/json\b/i.test(contentType)) {
      return Promise.reject(new HttpError(415, badRequest(`Content-Type ${JSON.stringify(contentType)} is not application/json`)));
    }
    const declared = Number(headers['content-length'] ?? 0);
    const tooLarge = () => new HttpError(413, new GatehouseError('GH_ERR_ADMISSION_TOO_LARGE', { limit: this.maxBodyBytes }));
    if (declared > this.maxBodyBytes) {
      request.resume(); // drain what is sent so the 413 reaches the client instead of a reset
      return Promise.reject(tooLarge());
    }
    const timeoutMs = this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      // node:http enforces requestTimeout on HTTP/1.1 only; an h2 stream that stalls is cut off here.
      const timer = setTimeout(() => {
        request.removeAllListeners('data');
        request.resume();
        reject(new HttpError(408, badRequest(`the request body did not arrive within ${timeoutMs} ms`)));
      }, timeoutMs);
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxBodyBytes) {
          clearTimeout(timer);
          request.removeAllListeners('data');
          request.resume();
          reject(tooLarge());
          return;
        }
        chunks.push(chunk);
      });
      request.on('end', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      request.on('error', (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Decides, or applies the failure mode when deciding throws or takes longer than the timeout. */
  private async decideWithin(webhook: AdmissionWebhook, admission: AdmissionRequest): Promise<Decision> {
    const timeoutMs = this.decisionTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no decision within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const decide = webhook === 'mutate-pods' ? this.mutatePod(admission)
        : webhook === 'accessrequest-status' ? Promise.resolve(reviewAccessRequestStatus(admission, this.accessRequests!))
        : this.validateGatehouse(admission);
      return await Promise.race([decide, timeout]);
    } catch (error) {
      return this.undecided(webhook, admission, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private undecided(webhook: AdmissionWebhook, admission: AdmissionRequest, error: unknown): Decision {
    const mode = webhook === 'mutate-pods' ? this.mutationFailureMode : this.validationFailureMode;
    const detail = isGatehouseError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
    const kind = admission.kind.kind;
    const name = describeName(admission);
    this.logger.error({ webhook, uid: admission.uid, kind, name, mode, err: error }, 'admission decision failed');
    if (mode === 'fail-open') {
      return { response: allow(admission.uid, { warnings: [`gatehouse: admitted without a decision (${detail})`] }), outcome: 'error_allowed' };
    }
    const message = new GatehouseError('GH_ERR_ADMISSION_UNAVAILABLE', { kind, name, detail }).message;
    return { response: deny(admission.uid, message, 500), outcome: 'error_denied' };
  }

  private async mutatePod(admission: AdmissionRequest): Promise<Decision> {
    const isPodCreate = admission.kind.group === '' && admission.kind.kind === 'Pod' && admission.operation === 'CREATE' && !admission.subResource;
    if (!isPodCreate) return { response: allow(admission.uid), outcome: 'allowed' };
    const pod = admission.object as PodLike;
    const namespace = admission.namespace ?? pod.metadata?.namespace ?? 'default';
    const context = await this.injection(pod, namespace);
    if (!context) throw new Error('the operator has not loaded namespaces and identities yet');
    // The fields go on each line rather than into a child logger, whose creation was a measurable share of an admission.
    const about = { uid: admission.uid, namespace, pod: describeName(admission) };
    const log = this.logger;
    try {
      const result = injectSidecar(pod, { ...context, namespace });
      // An injection shows on the pod itself (annotations) and in the metrics, and a scale-up admits pods by the
      // hundred: logged at debug. A pod left without a sidecar is the one someone asks about: at info, with why.
      if (result.injected) log.debug({ ...about, injected: true, reason: result.reason, dryRun: admission.dryRun === true }, 'pod admission');
      else log.info({ ...about, injected: false, reason: result.reason, dryRun: admission.dryRun === true }, 'pod admission');
      return { response: allow(admission.uid, { patch: result.patch }), outcome: result.patch.length > 0 ? 'patched' : 'allowed' };
    } catch (error) {
      // A pod that asks for something Gatehouse cannot give safely is refused on its merits.
      if (!isGatehouseError(error)) throw error;
      log.info({ ...about, code: error.code, reason: error.message }, 'pod refused');
      return { response: deny(admission.uid, `${error.message} [${error.code}]`), outcome: 'denied' };
    }
  }

  private async validateGatehouse(admission: AdmissionRequest): Promise<Decision> {
    const { kind } = admission;
    const ours = kind.group === API_GROUP && GATEHOUSE_KINDS.has(kind.kind);
    // Status writes are the operator's own; other operations carry nothing to validate.
    if (!ours || admission.subResource || admission.operation === 'CONNECT') return { response: allow(admission.uid), outcome: 'allowed' };
    const object = (admission.object ?? admission.oldObject) as { metadata?: { name?: string; generateName?: string; namespace?: string } } | undefined;
    const namespace = admission.namespace ?? object?.metadata?.namespace ?? 'default';
    const generated = object?.metadata?.generateName ? `${object.metadata.generateName}generated` : undefined;
    const name = admission.name ?? object?.metadata?.name ?? generated ?? '';
    const view = await this.clusterView(namespace);
    // A generateName object is judged under a stand-in name, so its problems are still its own.
    const named = generated !== undefined && !object?.metadata?.name && admission.object !== undefined
      ? { ...(admission.object as object), metadata: { ...object?.metadata, name } }
      : admission.object;
    const outcome = validateChange(view, { operation: admission.operation, kind: kind.kind, namespace, name, object: named });
    const warnings = [...outcome.warnings.map(describeOwnProblem), ...outcome.others.map(describeOtherProblem)];
    if (outcome.errors.length === 0) return { response: allow(admission.uid, { warnings }), outcome: 'allowed' };
    const problems = outcome.errors.map(describeOwnProblem).join('; ');
    const message = new GatehouseError('GH_ERR_ADMISSION_INVALID_OBJECT', { kind: kind.kind, name: `${namespace}/${name}`, count: outcome.errors.length, problems }).message;
    this.logger.info({ uid: admission.uid, kind: kind.kind, namespace, name, errors: outcome.errors.length }, 'gatehouse object refused');
    return { response: deny(admission.uid, message, 403, warnings), outcome: 'denied' };
  }
}

function describeName(admission: AdmissionRequest): string {
  const object = admission.object as PodLike | undefined;
  return admission.name ?? object?.metadata?.name ?? (object?.metadata?.generateName ? `${object.metadata.generateName}*` : '<unnamed>');
}

function badRequest(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_ADMISSION_BAD_REQUEST', { detail });
}

function asBadRequest(error: unknown): GatehouseError {
  if (isGatehouseError(error)) return error;
  return badRequest(error instanceof Error ? error.message : String(error));
}

function sendJson(exchange: Exchange, status: number, body: unknown): void {
  exchange.answer(status, 'application/json', JSON.stringify(body));
}
