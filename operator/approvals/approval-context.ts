// What the operator believes about an approval request, from the cluster rather than from the
// sidecar: the proven pod's ServiceAccount must be the requesting identity's, the policy must
// govern that identity and resource, and the named rule must be a require-approval rule; its
// approvers, N-of-M and timeout are then the ones the AccessRequest carries.
import { GatehouseError } from '../../api/errors.js';
import type { AccessPolicy, NonHumanIdentity } from '../../api/kinds/kinds.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import type { ApprovalRequestMessage } from '../../api/approvals/approval-proto.js';
import type { ApprovalContext } from './access-request-broker.js';

export interface ApprovalContextSource {
  /** Throws GH_ERR_APPROVAL_NOT_ALLOWED when the node may not ask this; other errors are "cannot tell now". */
  contextFor(nodeId: string, request: ApprovalRequestMessage): Promise<ApprovalContext>;
}

interface PodObject extends KubeObject {
  spec?: { serviceAccountName?: string };
}

function ruleName(rule: { name?: string }, index: number): string {
  return rule.name ?? `rules[${index}]`;
}

/** Reads pods, identities and policies through the Kubernetes API. */
export function kubeApprovalContext(kube: KubeClient): ApprovalContextSource {
  return {
    async contextFor(nodeId, request) {
      const [namespace, podName] = nodeId.split('/');
      const refuse = (detail: string) => new GatehouseError('GH_ERR_APPROVAL_NOT_ALLOWED', { node: nodeId, what: `${request.policy}/${request.rule}`, detail });
      if (!namespace || !podName) throw refuse('the node id is not namespace/pod');
      const [pod, identity, policy] = await Promise.all([
        kube.get<PodObject>(RESOURCE_TYPES.pods, namespace, podName),
        kube.get<NonHumanIdentity & KubeObject>(RESOURCE_TYPES.nonHumanIdentities, namespace, request.identity),
        kube.get<AccessPolicy & KubeObject>(RESOURCE_TYPES.accessPolicies, namespace, request.policy),
      ]);
      if (!pod) throw refuse(`pod ${nodeId} does not exist`);
      if (!identity) throw refuse(`NonHumanIdentity ${namespace}/${request.identity} does not exist`);
      const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
      if (identity.spec.serviceAccountName !== serviceAccount) {
        throw refuse(`the pod runs as ServiceAccount ${serviceAccount}, not as identity ${request.identity} (ServiceAccount ${identity.spec.serviceAccountName ?? 'none'})`);
      }
      if (!policy) throw refuse(`AccessPolicy ${namespace}/${request.policy} does not exist`);
      const groups = identity.spec.groups ?? [];
      const governs = policy.spec.subjects.some((subject) => subject.identity === request.identity || (subject.group !== undefined && groups.includes(subject.group)));
      if (!governs || !policy.spec.resources.includes(request.resource)) {
        throw refuse(`AccessPolicy ${request.policy} does not govern ${request.identity} on ${request.resource}`);
      }
      const rule = policy.spec.rules.find((candidate, index) => ruleName(candidate, index) === request.rule);
      if (!rule || rule.effect !== 'require-approval' || !rule.approval) throw refuse(`AccessPolicy ${request.policy} has no require-approval rule ${request.rule}`);
      return { namespace, requester: `system:serviceaccount:${namespace}:${serviceAccount}`, approval: rule.approval };
    },
  };
}
