// Serves the JWT issuer's public keys at /.well-known/jwks.json, for services that verify the tokens
// sidecars present. A plain node:http handler that answers only its own path, so it can sit in front
// of the operator's other routes (/metrics, /healthz) on the same server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JwksDocument } from './jwt-issuer.js';

export const JWKS_PATH = '/.well-known/jwks.json';

export interface JwksSource {
  jwks(): Promise<JwksDocument>;
}

export interface JwksHandlerOptions {
  /** Cache-Control max-age; keep it below the issuer's prepublish time so new keys are seen before use. */
  readonly maxAgeSeconds?: number;
}

/** Returns true when it handled the request (its path), false to let the next route have it. */
export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

function pathOf(request: IncomingMessage): string {
  return new URL(request.url ?? '/', 'http://localhost').pathname;
}

async function respond(source: JwksSource, request: IncomingMessage, response: ServerResponse, maxAge: number): Promise<void> {
  try {
    const body = JSON.stringify(await source.jwks());
    response.writeHead(200, {
      'content-type': 'application/jwk-set+json',
      'cache-control': `public, max-age=${maxAge}`,
      'content-length': Buffer.byteLength(body),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  } catch {
    response.writeHead(500, { 'content-type': 'text/plain' });
    response.end('JWKS unavailable\n');
  }
}

export function createJwksHandler(source: JwksSource, options: JwksHandlerOptions = {}): RouteHandler {
  const maxAge = options.maxAgeSeconds ?? 60;
  return (request, response) => {
    if (pathOf(request) !== JWKS_PATH) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      response.end('method not allowed\n');
      return true;
    }
    void respond(source, request, response, maxAge);
    return true;
  };
}
