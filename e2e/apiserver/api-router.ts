// The HTTP face of the loopback API server: health and OIDC endpoints, authentication, injected faults,
// discovery, then the resource verbs. Every failure is answered as a Kubernetes Status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { ApiStatusError, badRequest } from './api-status.js';
import { coreVersions, groupList, resourceList, versionInfo } from './discovery.js';
import type { Faults } from './fault-injector.js';
import type { IdentityApi } from './identity-api.js';
import type { ObjectStore } from './object-store.js';
import { groupVersionDocument, OPENAPI_V2_MEDIA_TYPE, openApiIndex } from './openapi.js';
import { patchTypeOf } from './patch.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE } from './protobuf-objects.js';
import { parseApiPath, type ResourceTarget } from './request-target.js';
import type { RequestContext, ResourceApi } from './resource-api.js';
import type { ResourceTypeRegistry } from './resource-types.js';
import type { ServiceAccountTokenIssuer } from './service-account-tokens.js';
import { toTable, wantsTable } from './table-output.js';
import { serveWatch } from './watch-stream.js';
import type { WatchHub } from './watch-hub.js';
import type { AdmissionUser } from './admission.js';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface ApiRouterParts {
  readonly registry: ResourceTypeRegistry;
  readonly store: ObjectStore;
  readonly hub: WatchHub;
  readonly resources: ResourceApi;
  readonly identity: IdentityApi;
  readonly issuer: ServiceAccountTokenIssuer;
  readonly faults: Faults;
  readonly logger: Logger;
  readonly requests: Counter<'verb' | 'code'>;
  readonly metricsText: () => Promise<string>;
  readonly publicUrl: () => string;
  readonly bookmarkIntervalMs: number;
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body, headers };
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiStatusError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 8MiB');
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  const contentType = request.headers['content-type'] ?? '';
  if (contentType.startsWith(PROTOBUF_MEDIA_TYPE) && raw.length > 0) return decodeProtobufObject(raw);
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  if (contentType.includes('protobuf') || contentType.includes('cbor')) {
    throw new ApiStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
  }
  try {
    return contentType.includes('yaml') ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw badRequest(`the body of the request could not be decoded: ${error instanceof Error ? error.message : 'invalid'}`);
  }
}

export class ApiRouter {
  constructor(private readonly parts: ApiRouterParts) {}

  /** Entry point for every HTTP request. */
  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://loopback');
    const method = request.method ?? 'GET';
    let verb = method.toLowerCase();
    try {
      const reply = await this.route(request, response, url, method, (name) => { verb = name; });
      if (reply !== undefined) this.send(response, reply);
      this.parts.requests.inc({ verb, code: String(reply?.status ?? 200) });
      this.parts.logger.debug({ verb, path: url.pathname, code: reply?.status ?? 200 }, 'request');
    } catch (error) {
      const status = error instanceof ApiStatusError ? error : new ApiStatusError(500, 'InternalError', `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`);
      if (!(error instanceof ApiStatusError)) this.parts.logger.error({ err: error, path: url.pathname }, 'request failed');
      this.parts.requests.inc({ verb, code: String(status.code) });
      this.parts.logger.debug({ verb, path: url.pathname, code: status.code, reason: status.reason }, 'request failed');
      if (response.headersSent) {
        response.end();
        return;
      }
      this.send(response, json(status.code, status.toStatus(), status.details?.retryAfterSeconds === undefined ? undefined : { 'retry-after': String(status.details.retryAfterSeconds) }));
    }
  }

  private send(response: ServerResponse, reply: Reply): void {
    if (response.headersSent) return;
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    response.writeHead(reply.status, { 'content-type': typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', ...reply.headers });
    response.end(text);
  }

  private async route(request: IncomingMessage, response: ServerResponse, url: URL, method: string, setVerb: (verb: string) => void): Promise<Reply | undefined> {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const publicReply = await this.publicEndpoint(path);
    if (publicReply !== undefined) return publicReply;
    const faultRequest = { method, path, query: url.searchParams };
    const delay = this.parts.faults.delayFor(faultRequest);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const failure = this.parts.faults.takeFailure(faultRequest);
    if (failure !== undefined) throw injected(failure.status, failure.retryAfterSeconds);
    const user = await this.parts.identity.authenticate(request.headers.authorization);
    if (user === undefined) throw new ApiStatusError(401, 'Unauthorized', 'Unauthorized');
    const openApiReply = this.openApi(path);
    if (openApiReply !== undefined) return openApiReply;
    const parsed = parseApiPath(path, this.parts.registry);
    switch (parsed.kind) {
      case 'core-versions': return json(200, coreVersions());
      case 'groups': return json(200, groupList(this.parts.registry));
      case 'group': return this.groupDocument(parsed.group);
      case 'resources': {
        const list = resourceList(this.parts.registry, parsed.group, parsed.version);
        if (list === undefined) throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
        return json(200, list);
      }
      case 'other': throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
      case 'resource': return this.resource(request, response, url, method, parsed.target, user, setVerb);
    }
  }

  /** Endpoints the real server serves to anyone (system:public-info-viewer, service-account-issuer-discovery). */
  private async publicEndpoint(path: string): Promise<Reply | undefined> {
    switch (path) {
      case '/healthz': case '/readyz': case '/livez': return json(200, 'ok');
      case '/version': return json(200, versionInfo());
      case '/metrics': return json(200, await this.parts.metricsText());
      case '/.well-known/openid-configuration': return json(200, this.parts.issuer.openIdConfiguration(`${this.parts.publicUrl()}/openid/v1/jwks`));
      case '/openid/v1/jwks': return json(200, this.parts.issuer.jwks());
      default: return undefined;
    }
  }

  private openApi(path: string): Reply | undefined {
    if (path === '/openapi/v2') return { status: 200, body: '', headers: { 'content-type': OPENAPI_V2_MEDIA_TYPE } };
    if (path === '/openapi/v3') return json(200, openApiIndex(this.parts.registry));
    const match = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (match === null) return undefined;
    const document = match[1] !== undefined ? groupVersionDocument(this.parts.registry, '', match[1]) : groupVersionDocument(this.parts.registry, match[2], match[3]);
    if (document === undefined) throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
    return json(200, document);
  }

  private groupDocument(group: string): Reply {
    const found = (groupList(this.parts.registry).groups as Array<{ name: string }>).find((candidate) => candidate.name === group);
    if (found === undefined) throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
    return json(200, { kind: 'APIGroup', apiVersion: 'v1', ...found });
  }

  private async resource(request: IncomingMessage, response: ServerResponse, url: URL, method: string, target: ResourceTarget, user: AdmissionUser, setVerb: (verb: string) => void): Promise<Reply | undefined> {
    const query = url.searchParams;
    const warnings: string[] = [];
    const context: RequestContext = { target, query, user, userAgentManager: (request.headers['user-agent'] ?? 'unknown').split('/')[0], warnings };
    const withWarnings = (reply: Reply): Reply => (warnings.length === 0 ? reply : { ...reply, headers: { ...reply.headers, warning: warnings.map((text) => `299 - ${JSON.stringify(text)}`).join(', ') } });
    const { resources, identity } = this.parts;
    const asTable = wantsTable(request.headers.accept);
    const watching = target.watchPath || query.get('watch') === '1' || query.get('watch') === 'true';
    if (target.type.virtual === true) {
      if (method !== 'POST' || target.name !== undefined) throw new ApiStatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
      setVerb('create');
      return json(201, await identity.tokenReview(await readBody(request)));
    }
    if (target.subresource === 'token') {
      if (method !== 'POST') throw new ApiStatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      setVerb('create');
      return json(201, await identity.tokenRequest(target.namespace!, target.name!, await readBody(request)));
    }
    switch (method) {
      case 'GET': {
        if (watching) {
          setVerb('watch');
          serveWatch(response, target, query, this.parts.store, this.parts.hub, { bookmarkIntervalMs: this.parts.bookmarkIntervalMs, asTable });
          return undefined;
        }
        if (target.name !== undefined) {
          setVerb('get');
          const object = resources.get(context);
          return json(200, asTable ? toTable(target.type, target.version, [object], { resourceVersion: object.metadata.resourceVersion }) : object);
        }
        setVerb('list');
        const list = resources.list(context);
        return json(200, asTable ? toTable(target.type, target.version, list.items, list.metadata) : list);
      }
      case 'POST':
        if (target.name !== undefined) break;
        setVerb('create');
        return withWarnings(json(201, await resources.create(context, await readBody(request))));
      case 'PUT':
        if (target.name === undefined) break;
        setVerb('update');
        return withWarnings(json(200, await resources.update(context, await readBody(request))));
      case 'PATCH': {
        if (target.name === undefined) break;
        setVerb('patch');
        const patchType = patchTypeOf(request.headers['content-type']);
        const result = await resources.patch(context, patchType, await readBody(request));
        return withWarnings(json(result.created ? 201 : 200, result.object));
      }
      case 'DELETE':
        setVerb(target.name === undefined ? 'deletecollection' : 'delete');
        if (target.name === undefined) return json(200, await resources.deleteCollection(context, await readBody(request)));
        return json(200, await resources.delete(context, await readBody(request)));
    }
    throw new ApiStatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }
}

function injected(status: number, retryAfterSeconds: number): ApiStatusError {
  switch (status) {
    case 429: return new ApiStatusError(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later (injected fault)', { retryAfterSeconds });
    case 409: return new ApiStatusError(409, 'Conflict', 'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected fault)');
    default: return new ApiStatusError(500, 'InternalError', 'Internal error occurred: injected fault');
  }
}
