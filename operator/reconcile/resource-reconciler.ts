// ProtectedResource: Ready when its credentials Secret and CA Secret exist with the right keys and
// validateConfig finds nothing else wrong; otherwise Ready=False with SecretNotFound,
// SecretKeysMissing, CASecretNotFound, CASecretKeyMissing, CASecretInvalid, PortConflict or Invalid.
// Resources with postgres-dynamic credentials carry the finalizer gatehouse.dev/credentials: the
// database roles issued for them are dropped (their sessions ended) before the object may go.
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { isDeleting, liveMeta, splitKey } from './cluster-objects.js';
import type { ReconcilerDeps } from './identity-reconciler.js';
import { readyCondition, RESOURCE_REASONS, resourceReason } from './ready-condition.js';
import { updateCondition, type ReconcileResult, type Reconciler } from './status-writer.js';

export const CREDENTIALS_FINALIZER = 'gatehouse.dev/credentials';

/** Ends every credential issued on a resource; the cluster control plane implements it. */
export interface CredentialRevoker {
  /** Resolves once every credential on the resource is revoked; rejects when one could not be (retried). */
  revokeResource(resource: ProtectedResource): Promise<void>;
}

export interface ResourceReconcilerDeps extends ReconcilerDeps {
  readonly revoker: CredentialRevoker;
  readonly logger: Logger;
}

function needsFinalizer(resource: ProtectedResource): boolean {
  return resource.spec.credentials.strategy === 'postgres-dynamic';
}

export class ResourceReconciler implements Reconciler {
  constructor(private readonly deps: ResourceReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const resource = this.deps.stores.resources.get(namespace, name);
    if (!resource) return;
    const finalizers = liveMeta(resource).finalizers ?? [];
    const holds = finalizers.includes(CREDENTIALS_FINALIZER);
    if (isDeleting(resource)) {
      if (holds) await this.finalize(resource, finalizers);
      return;
    }
    if (needsFinalizer(resource) !== holds) {
      const next = holds ? finalizers.filter((finalizer) => finalizer !== CREDENTIALS_FINALIZER) : [...finalizers, CREDENTIALS_FINALIZER];
      await this.deps.writer.writeFinalizers(resource, next);
    }
    const { address, protocol, credentials } = resource.spec;
    const desired = readyCondition({
      problems: this.deps.validation.problemsOf('ProtectedResource', namespace, name),
      reasonOf: resourceReason,
      order: RESOURCE_REASONS,
      readyMessage: `${protocol} at ${address}, credentials ${credentials.strategy}`,
      ...(resource.metadata.generation === undefined ? {} : { generation: resource.metadata.generation }),
    });
    await updateCondition(this.deps.writer, resource, desired, (this.deps.now ?? (() => new Date()))());
  }

  /** Revokes first: a failure keeps the finalizer, so the object (and the record of its roles) stays until it succeeds. */
  private async finalize(resource: ProtectedResource, finalizers: readonly string[]): Promise<void> {
    const log = this.deps.logger.child({ resource: `${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}` });
    await this.deps.revoker.revokeResource(resource);
    await this.deps.writer.writeFinalizers(resource, finalizers.filter((finalizer) => finalizer !== CREDENTIALS_FINALIZER));
    log.info({ finalizer: CREDENTIALS_FINALIZER }, 'credentials revoked; finalizer removed');
  }
}
