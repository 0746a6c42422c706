// `gatehouse approve NAME [--reason TEXT]`: one approval of a held statement. In a cluster it is a
// patch of the AccessRequest's status subresource (the admission webhook records who you are and
// whether you may); with --dev it goes to the running `gatehouse dev`. See also deny.ts.
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import { decideRequest, type Verdict } from '../../operator/approvals/access-request-client.js';
import { APPROVALS_PATH } from '../../operator/approvals/local-approval-routes.js';
import type { LocalDecisionResult } from '../../operator/approvals/local-approval-desk.js';
import type { CliCommand, CliIO } from '../io.js';
import { approvalTarget, devCall, localUser, TARGET_OPTIONS } from './requests.js';

/** The approve and deny commands differ only in the verdict. */
export function decisionCommand(verdict: Verdict): CliCommand {
  const word = verdict === 'approve' ? 'approve' : 'deny';
  return {
    path: [word],
    summary: `${word} a statement held for approval (a patch of the AccessRequest status; --dev for a running \`gatehouse dev\`)`,
    usage: `gatehouse ${word} NAME [--reason TEXT] [-n NS] [--kubeconfig PATH] [--dev | --dev-admin URL] [--as USER]`,
    async run(args: string[], io: CliIO): Promise<number> {
      const { values, positionals } = parseArgs({
        args,
        allowPositionals: true,
        options: { ...TARGET_OPTIONS, reason: { type: 'string' }, as: { type: 'string' } },
      });
      if (positionals.length !== 1) throw new GatehouseError('GH_ERR_USAGE', { detail: `gatehouse ${word} needs exactly one request NAME` });
      const name = positionals[0]!;
      const dev = values.dev || values['dev-admin'] !== undefined;
      if (values.as !== undefined && !dev) throw new GatehouseError('GH_ERR_USAGE', { detail: '--as is for --dev only: in a cluster you decide as the user your kubeconfig authenticates' });
      const target = approvalTarget(values);
      if (target.kind === 'dev') {
        const result = await devCall<LocalDecisionResult>(target.adminUrl, `${APPROVALS_PATH}/${encodeURIComponent(name)}`, {
          decision: verdict, user: localUser(values.as), ...(values.reason ? { reason: values.reason } : {}),
        });
        io.stdout(`${name}: ${result.phase} (${result.approvals} approvals)\n`);
        return 0;
      }
      try {
        const decided = await decideRequest(target.kube, target.namespace, name, verdict, values.reason);
        const status = decided.status;
        const approved = (status?.approvals ?? []).filter((entry) => entry.decision === 'approve').length;
        io.stdout(`accessrequest/${name}: ${status?.phase ?? 'unknown'} (${approved}/${decided.spec.requiredApprovals ?? 1} approvals)${status?.decidedBy ? `, decided by ${status.decidedBy}` : ''}\n`);
      } finally {
        target.kube.close?.();
      }
      return 0;
    },
  };
}

export const approveCommand: CliCommand = decisionCommand('approve');
