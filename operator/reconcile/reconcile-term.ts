// The reconcilers of one leadership term: a controller per kind with a fresh work queue, seeded with
// every object when the term starts (reconcile reads state, so a full pass is how a new leader
// catches up), fed by informer events while it lasts, and stopped when leadership ends.
import type { Logger } from '../../api/logging/logger.js';
import { Controller } from '../kube/controller.js';
import type { KubeMetrics } from '../kube/kube-metrics.js';
import { keyOf, type ClusterStores } from './cluster-objects.js';
import type { Dependents } from './dependents.js';
import type { Reconciler } from './status-writer.js';

export interface ReconcilerSet {
  readonly identities: Reconciler;
  readonly resources: Reconciler;
  readonly policies: Reconciler;
}

export interface ReconcileTermOptions {
  readonly reconcilers: ReconcilerSet;
  readonly stores: ClusterStores;
  readonly logger: Logger;
  readonly metrics?: KubeMetrics;
  /** Keys reconciled at once per kind. Default 2. */
  readonly workers?: number;
}

export class ReconcileTerm {
  private readonly identities: Controller;
  private readonly resources: Controller;
  private readonly policies: Controller;

  constructor(options: ReconcileTermOptions) {
    const controller = (name: string, reconciler: Reconciler): Controller =>
      new Controller({
        name,
        reconcile: (key) => reconciler.reconcile(key),
        workers: options.workers ?? 2,
        logger: options.logger,
        ...(options.metrics ? { metrics: options.metrics } : {}),
      });
    this.identities = controller('nonhumanidentity', options.reconcilers.identities);
    this.resources = controller('protectedresource', options.reconcilers.resources);
    this.policies = controller('accesspolicy', options.reconcilers.policies);
    for (const identity of options.stores.identities.list()) this.identities.enqueue(keyOf(identity));
    for (const resource of options.stores.resources.list()) this.resources.enqueue(keyOf(resource));
    for (const policy of options.stores.policies.list()) this.policies.enqueue(keyOf(policy));
    this.identities.start();
    this.resources.start();
    this.policies.start();
  }

  enqueue(dependents: Dependents): void {
    for (const key of dependents.identities) this.identities.enqueue(key);
    for (const key of dependents.resources) this.resources.enqueue(key);
    for (const key of dependents.policies) this.policies.enqueue(key);
  }

  /** Stops handing out keys and waits for the reconciles in progress. */
  async stop(): Promise<void> {
    await Promise.all([this.identities.stop(), this.resources.stop(), this.policies.stop()]);
  }
}
