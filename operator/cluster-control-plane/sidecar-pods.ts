// Which pods the cluster control plane serves and as whom: a pod the injection webhook gave a
// sidecar (annotation gatehouse.dev/injected: "true"), known to the discovery service as
// `namespace/pod` (what its projected ServiceAccount token proves, see nodeIdOf), acting as the one
// NonHumanIdentity in its namespace that names its ServiceAccount.
import type { NonHumanIdentity } from '../../api/kinds/kinds.js';
import { namespaceOf } from '../../api/manifests/config.js';
import { INJECTED_ANNOTATION } from '../admission/pod-injection.js';
import type { KubePod } from '../reconcile/cluster-objects.js';

export { INJECTED_ANNOTATION } from '../admission/pod-injection.js';

/** Pods whose containers have all ended run no sidecar any more. */
const FINISHED_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

export function carriesSidecar(pod: KubePod): boolean {
  return pod.metadata.annotations?.[INJECTED_ANNOTATION] === 'true' && !FINISHED_PHASES.has(pod.status?.phase ?? '');
}

export function nodeIdOfPod(pod: KubePod): string {
  return `${namespaceOf(pod)}/${pod.metadata.name}`;
}

/** The ServiceAccount a pod runs as; Kubernetes defaults it to `default`. */
export function serviceAccountOf(pod: KubePod): string {
  return pod.spec?.serviceAccountName ?? 'default';
}

/**
 * The identity claiming the pod's ServiceAccount, or undefined when none or several do: two
 * identities for one workload would make its access depend on which was found first.
 */
export function identityOfPod(pod: KubePod, identities: readonly NonHumanIdentity[]): NonHumanIdentity | undefined {
  const namespace = namespaceOf(pod);
  const serviceAccount = serviceAccountOf(pod);
  const matches = identities.filter((identity) => namespaceOf(identity) === namespace && identity.spec.serviceAccountName === serviceAccount);
  return matches.length === 1 ? matches[0] : undefined;
}
