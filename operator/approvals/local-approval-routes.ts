// The admin-port endpoints of `gatehouse dev` that `gatehouse requests|approve|deny` talk to:
// GET /approvals lists pending requests, POST /approvals/NAME decides one. Only loopback clients
// are answered: in local mode whoever reaches this port decides, so it must be this machine.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isGatehouseError } from '../../api/errors.js';
import type { LocalApprovalDesk } from './local-approval-desk.js';

export const APPROVALS_PATH = '/approvals';
const MAX_BODY_BYTES = 64 * 1024;

/** Handles the request and returns true when it is an approvals path; false leaves it to the admin server. */
export type AdminRoute = (request: IncomingMessage, response: ServerResponse) => boolean;

function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        resolve(typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
      } catch (error) {
        reject(error as Error);
      }
    });
    request.on('error', reject);
  });
}

export function localApprovalRoutes(desk: LocalApprovalDesk): AdminRoute {
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path !== APPROVALS_PATH && !path.startsWith(`${APPROVALS_PATH}/`)) return false;
    if (!isLoopback(request.socket.remoteAddress)) {
      sendJson(response, 403, { code: 'GH_ERR_APPROVAL_REFUSED', message: 'approvals are decided from this machine only (loopback)' });
      return true;
    }
    if (path === APPROVALS_PATH && request.method === 'GET') {
      sendJson(response, 200, { requests: desk.pending() });
      return true;
    }
    const name = decodeURIComponent(path.slice(APPROVALS_PATH.length + 1));
    if (request.method !== 'POST' || name === '' || name.includes('/')) {
      sendJson(response, 405, { code: 'GH_ERR_USAGE', message: `GET ${APPROVALS_PATH} or POST ${APPROVALS_PATH}/NAME` });
      return true;
    }
    void readJson(request).then(
      (body) => {
        const decision = body.decision === 'approve' || body.decision === 'deny' ? body.decision : undefined;
        if (!decision) return sendJson(response, 400, { code: 'GH_ERR_USAGE', message: 'decision must be approve or deny' });
        try {
          const reason = typeof body.reason === 'string' && body.reason !== '' ? body.reason : undefined;
          sendJson(response, 200, desk.decide(name, typeof body.user === 'string' ? body.user : '', decision, reason));
        } catch (error) {
          if (!isGatehouseError(error)) throw error;
          sendJson(response, error.code === 'GH_ERR_APPROVAL_NOT_FOUND' ? 404 : 409, { code: error.code, message: error.message });
        }
      },
      (error: unknown) => sendJson(response, 400, { code: 'GH_ERR_USAGE', message: `the body is not JSON: ${(error as Error).message}` }),
    );
    return true;
  };
}
