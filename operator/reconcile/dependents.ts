// Which objects to reconcile again when something changes. Reconcilers read current state, so a
// change only has to wake the objects whose Ready could depend on it: a Secret the resources that
// name it, a ServiceAccount the identities that name it, and a Gatehouse object its namespace's
// objects of the kinds it can affect (references, port and identity conflicts, the policies that
// layer over one another are all namespace-wide). The work queue de-duplicates the keys.
import { namespaceOf } from '../../api/manifests/config.js';
import { keyOf, type ClusterStores } from './cluster-objects.js';

export type WatchedKind = 'NonHumanIdentity' | 'ProtectedResource' | 'AccessPolicy' | 'Secret' | 'ServiceAccount';

export interface ChangedObject {
  readonly kind: WatchedKind;
  readonly namespace: string;
  readonly name: string;
}

export interface Dependents {
  readonly identities: readonly string[];
  readonly resources: readonly string[];
  readonly policies: readonly string[];
}

const keys = (objects: readonly { metadata: { name: string; namespace?: string } }[]): string[] => objects.map(keyOf);

export function dependentsOf(stores: ClusterStores, changed: ChangedObject): Dependents {
  const { namespace, name } = changed;
  switch (changed.kind) {
    case 'Secret':
      return {
        identities: [],
        resources: keys(stores.resources.list(namespace).filter((resource) =>
          resource.spec.credentials.secretRef?.name === name || resource.spec.tls?.caSecretRef?.name === name)),
        policies: [],
      };
    case 'ServiceAccount':
      return {
        identities: keys(stores.identities.list(namespace).filter((identity) => identity.spec.serviceAccountName === name)),
        resources: [],
        policies: [],
      };
    case 'NonHumanIdentity':
      return { identities: withSelf(keys(stores.identities.list(namespace)), changed), resources: [], policies: keys(stores.policies.list(namespace)) };
    case 'ProtectedResource':
      return { identities: [], resources: withSelf(keys(stores.resources.list(namespace)), changed), policies: keys(stores.policies.list(namespace)) };
    case 'AccessPolicy':
      return { identities: [], resources: [], policies: withSelf(keys(stores.policies.list(namespace)), changed) };
  }
}

/** The changed object itself is reconciled even when the store no longer lists it (deleted). */
function withSelf(list: string[], changed: ChangedObject): string[] {
  const own = `${changed.namespace}/${changed.name}`;
  return list.includes(own) ? list : [...list, own];
}

/** The namespace a changed object is in, defaulted as everywhere else. */
export function changedObject(kind: WatchedKind, object: { metadata: { name: string; namespace?: string } }): ChangedObject {
  return { kind, namespace: namespaceOf(object), name: object.metadata.name };
}
