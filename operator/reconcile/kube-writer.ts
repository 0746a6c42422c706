// GatehouseWriter over the KubeClient: status through the /status subresource (a merge patch), and
// finalizers with a JSON patch guarded by a test of the resourceVersion read, so a finalizer list
// changed by someone else in the meantime is never overwritten (the reconcile retries instead).
import type { ObservedStatusT } from '../../api/kinds/kinds.js';
import { namespaceOf } from '../../api/manifests/config.js';
import { RESOURCE_TYPES, type KubeClient, type ResourceType } from '../kube/kube-client.js';
import type { GatehouseWriter, ReconciledKind, ReconciledObject } from './status-writer.js';

const TYPES: Record<ReconciledKind, ResourceType> = {
  NonHumanIdentity: RESOURCE_TYPES.nonHumanIdentities,
  ProtectedResource: RESOURCE_TYPES.protectedResources,
  AccessPolicy: RESOURCE_TYPES.accessPolicies,
};

export function kubeWriter(client: KubeClient): GatehouseWriter {
  return {
    async writeStatus(kind: ReconciledKind, namespace: string, name: string, status: ObservedStatusT): Promise<void> {
      await client.patchStatus(TYPES[kind], namespace, name, status);
    },
    async writeFinalizers(object: ReconciledObject, finalizers: readonly string[]): Promise<void> {
      const { resourceVersion } = object.metadata;
      const patch = [
        ...(resourceVersion === undefined ? [] : [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }]),
        { op: 'add', path: '/metadata/finalizers', value: [...finalizers] },
      ];
      await client.patch(TYPES[object.kind], namespaceOf(object), object.metadata.name, patch, 'json');
    },
  };
}
