// Which NonHumanIdentity claims a ServiceAccount and which ProtectedResources it may reach, remembered
// per (namespace, ServiceAccount) for the injection webhook. Working it out builds the namespace's
// config and a full policy snapshot, far more than the rest of an admission costs; it changes only
// when an object in that namespace changes, so the operator's informers invalidate it on every event.
import type { ProtectedResource } from '../../api/kinds/kinds.js';

/** What injection needs from the policy model for one ServiceAccount. */
export interface IdentityAccess {
  /** The NonHumanIdentity claiming the ServiceAccount; absent when none (or more than one) does. */
  readonly identity?: string;
  readonly resources: readonly ProtectedResource[];
}

export type IdentityAccessLookup = (namespace: string, serviceAccount: string) => IdentityAccess;

export class IdentityAccessCache {
  private readonly byNamespace = new Map<string, Map<string, IdentityAccess>>();
  private readonly compute: IdentityAccessLookup;

  /** `compute` must read only the namespace's own objects: invalidation is per namespace. */
  constructor(compute: IdentityAccessLookup) {
    this.compute = compute;
  }

  lookup(namespace: string, serviceAccount: string): IdentityAccess {
    let accounts = this.byNamespace.get(namespace);
    const known = accounts?.get(serviceAccount);
    if (known) return known;
    const computed = this.compute(namespace, serviceAccount);
    // Frozen because every later admission in the namespace shares it.
    const access: IdentityAccess = Object.freeze({ ...computed, resources: Object.freeze([...computed.resources]) });
    if (!accounts) this.byNamespace.set(namespace, (accounts = new Map()));
    accounts.set(serviceAccount, access);
    return access;
  }

  /** Forgets one namespace's answers, or every answer when the namespace is not known (cluster-scoped changes, relists). */
  invalidate(namespace?: string): void {
    if (namespace === undefined) this.byNamespace.clear();
    else this.byNamespace.delete(namespace);
  }

  /** How many (namespace, ServiceAccount) answers are held. */
  get size(): number {
    let count = 0;
    for (const accounts of this.byNamespace.values()) count += accounts.size;
    return count;
  }
}
