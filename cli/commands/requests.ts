// `gatehouse requests`: the statements waiting for a human decision, as a table — from the cluster
// (AccessRequests in Pending, read with the kubeconfig; also `kubectl gatehouse requests`) or from
// a running `gatehouse dev` (--dev, over its loopback admin port). Also the one place the approval
// commands find their target, so requests, approve and deny take the same flags.
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import { listPendingRequests, type PendingRequestRow, type Verdict } from '../../operator/approvals/access-request-client.js';
import { APPROVALS_PATH } from '../../operator/approvals/local-approval-routes.js';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../../operator/kube/kube-client.js';
import type { CliCommand, CliIO } from '../io.js';

export const DEFAULT_DEV_ADMIN = 'http://127.0.0.1:9464';

/** Flags shared by requests, approve and deny. */
export const TARGET_OPTIONS = {
  dev: { type: 'boolean', default: false },
  'dev-admin': { type: 'string' },
  kubeconfig: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
} as const;

export type ApprovalTarget =
  | { readonly kind: 'dev'; readonly adminUrl: string }
  | { readonly kind: 'cluster'; readonly kube: KubeClient; readonly namespace: string };

/** --dev / --dev-admin URL: a running `gatehouse dev`; otherwise the cluster of the kubeconfig. */
export function approvalTarget(values: { dev?: boolean; 'dev-admin'?: string; kubeconfig?: string; namespace?: string }): ApprovalTarget {
  if (values.dev || values['dev-admin'] !== undefined) return { kind: 'dev', adminUrl: (values['dev-admin'] ?? DEFAULT_DEV_ADMIN).replace(/\/+$/, '') };
  const kubeConfig = loadKubeConfig(values.kubeconfig !== undefined ? { kubeconfigPath: values.kubeconfig } : {});
  const contextNamespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  return { kind: 'cluster', kube: createKubeClient({ kubeConfig }), namespace: values.namespace ?? contextNamespace ?? 'default' };
}

/** A JSON call to the dev admin port; errors come back as {code, message}. */
export async function devCall<T>(adminUrl: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${adminUrl}${path}`, body === undefined
      ? { signal: AbortSignal.timeout(10_000) }
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new GatehouseError('GH_ERR_APPROVAL_DESK_UNREACHABLE', { url: adminUrl, detail: (error as Error).message });
  }
  const answer = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
  if (response.status === 404 && answer.code === 'GH_ERR_APPROVAL_NOT_FOUND') throw new GatehouseError('GH_ERR_APPROVAL_NOT_FOUND', { name: path.split('/').pop()!, where: ' in gatehouse dev' });
  if (!response.ok) throw new GatehouseError('GH_ERR_APPROVAL_REFUSED', { name: path.split('/').pop()!, detail: answer.message ?? `HTTP ${response.status}` });
  return answer as T;
}

/** Who decides in local mode: --as, or the user running the command. */
export function localUser(as: string | undefined): string {
  return as ?? userInfo().username;
}

export type { Verdict };

function truncate(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

export function formatRequests(rows: readonly PendingRequestRow[], withNamespace: boolean): string {
  if (rows.length === 0) return 'No pending requests.\n';
  const header = [...(withNamespace ? ['NAMESPACE'] : []), 'NAME', 'IDENTITY', 'RESOURCE', 'RULE', 'APPROVALS', 'EXPIRES', 'STATEMENT'];
  const table = rows.map((row) => [
    ...(withNamespace ? [row.namespace] : []), row.name, row.identity, row.resource, row.rule, row.approvals, row.expiresAt, truncate(row.statement, 60),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((cells) => cells[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return `${[line(header), ...table.map(line)].join('\n')}\n`;
}

export const requestsCommand: CliCommand = {
  path: ['requests'],
  summary: 'list statements waiting for approval (cluster AccessRequests, or a running `gatehouse dev` with --dev)',
  usage: 'gatehouse requests [-n NS | -A] [--kubeconfig PATH] [--dev | --dev-admin URL] [--json]',
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, 'all-namespaces': { type: 'boolean', short: 'A', default: false }, json: { type: 'boolean', default: false } },
    });
    if (positionals.length > 0) throw new GatehouseError('GH_ERR_USAGE', { detail: `unexpected argument ${positionals[0]}` });
    const target = approvalTarget(values);
    let rows: PendingRequestRow[];
    if (target.kind === 'dev') {
      rows = (await devCall<{ requests: PendingRequestRow[] }>(target.adminUrl, APPROVALS_PATH)).requests;
    } else {
      try {
        rows = await listPendingRequests(target.kube, values['all-namespaces'] ? undefined : target.namespace);
      } finally {
        target.kube.close?.();
      }
    }
    io.stdout(values.json ? `${JSON.stringify(rows, null, 2)}\n` : formatRequests(rows, values['all-namespaces'] === true));
    return 0;
  },
};
