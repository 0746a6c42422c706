// NonHumanIdentity: Ready when validateConfig finds nothing wrong with it and, for an in-cluster
// identity, its ServiceAccount exists (pods running as it are this identity); otherwise Ready=False
// with ServiceAccountNotFound, IdentityConflict or Invalid.
import { namespaceOf } from '../../api/manifests/config.js';
import type { ClusterValidation } from './cluster-config.js';
import { splitKey, type ClusterStores } from './cluster-objects.js';
import { IDENTITY_REASONS, identityReason, readyCondition, type ClusterProblem } from './ready-condition.js';
import { updateCondition, type GatehouseWriter, type ReconcileResult, type Reconciler } from './status-writer.js';

export interface ReconcilerDeps {
  readonly stores: ClusterStores;
  readonly validation: ClusterValidation;
  readonly writer: GatehouseWriter;
  readonly now?: () => Date;
}

export class IdentityReconciler implements Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const identity = this.deps.stores.identities.get(namespace, name);
    if (!identity) return;
    const { serviceAccountName, oidc } = identity.spec;
    const clusterProblems: ClusterProblem[] = [];
    if (serviceAccountName !== undefined && !this.deps.stores.serviceAccounts.get(namespace, serviceAccountName)) {
      clusterProblems.push({
        reason: 'ServiceAccountNotFound',
        message: `spec.serviceAccountName: ServiceAccount ${serviceAccountName} does not exist in namespace ${namespaceOf(identity)}; create it, or fix the name`,
      });
    }
    const who = [
      serviceAccountName === undefined ? undefined : `pods running as ServiceAccount ${serviceAccountName}`,
      oidc === undefined ? undefined : `OIDC subject ${oidc.subject} from ${oidc.issuer}`,
    ].filter((part) => part !== undefined);
    const desired = readyCondition({
      problems: this.deps.validation.problemsOf('NonHumanIdentity', namespace, name),
      clusterProblems,
      reasonOf: identityReason,
      order: IDENTITY_REASONS,
      readyMessage: `identity of ${who.join(' and ')}`,
      ...(identity.metadata.generation === undefined ? {} : { generation: identity.metadata.generation }),
    });
    await updateCondition(this.deps.writer, identity, desired, (this.deps.now ?? (() => new Date()))());
  }
}
