// How reconcilers change the cluster: the Ready condition through the status subresource, written
// only when it says something new, and metadata.finalizers. The operator implements GatehouseWriter
// with the KubeClient; tests with an in-memory recorder.
import type { AccessPolicy, NonHumanIdentity, ObservedStatusT, ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf } from '../../api/manifests/config.js';
import { setCondition } from '../kube/conditions.js';
import { conditionHolds, type DesiredCondition } from './ready-condition.js';

export type ReconciledObject = NonHumanIdentity | ProtectedResource | AccessPolicy;
export type ReconciledKind = ReconciledObject['kind'];

export interface GatehouseWriter {
  /** Replaces the object's status (observedGeneration and conditions) through the status subresource. */
  writeStatus(kind: ReconciledKind, namespace: string, name: string, status: ObservedStatusT): Promise<void>;
  /**
   * Sets metadata.finalizers to `finalizers`, on the condition that they are still what `object`
   * holds (a concurrent change fails the write, and the reconcile is retried on fresh state).
   */
  writeFinalizers(object: ReconciledObject, finalizers: readonly string[]): Promise<void>;
}

/** What a reconcile tells its controller: nothing (done), or when to look again. */
export type ReconcileResult = { readonly requeueAfterMs?: number } | void;

export interface Reconciler {
  reconcile(key: string): Promise<ReconcileResult>;
}

/** Writes `desired` with observedGeneration unless the object already says exactly that; true when written. */
export async function updateCondition(writer: GatehouseWriter, object: ReconciledObject, desired: DesiredCondition, now: Date): Promise<boolean> {
  const conditions = object.status?.conditions ?? [];
  const generation = object.metadata.generation;
  if (conditionHolds(conditions, desired) && object.status?.observedGeneration === generation) return false;
  const status: ObservedStatusT = {
    ...(object.status ?? {}),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: setCondition(conditions, desired, now),
  };
  await writer.writeStatus(object.kind, namespaceOf(object), object.metadata.name, status);
  return true;
}
