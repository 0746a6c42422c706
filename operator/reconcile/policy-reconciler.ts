// AccessPolicy: Ready when every resource and identity it names exists and validateConfig finds
// nothing else wrong; otherwise Ready=False with ResourceNotFound, IdentityNotFound or Invalid,
// the message naming what is missing. Warnings (e.g. a group nobody is in) ride along on Ready=True.
import { splitKey } from './cluster-objects.js';
import type { ReconcilerDeps } from './identity-reconciler.js';
import { POLICY_REASONS, policyReason, readyCondition } from './ready-condition.js';
import { updateCondition, type ReconcileResult, type Reconciler } from './status-writer.js';

export class PolicyReconciler implements Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const policy = this.deps.stores.policies.get(namespace, name);
    if (!policy) return;
    const { resources, rules } = policy.spec;
    const desired = readyCondition({
      problems: this.deps.validation.problemsOf('AccessPolicy', namespace, name),
      reasonOf: policyReason,
      order: POLICY_REASONS,
      readyMessage: `${rules.length} rule(s) on ${resources.join(', ')}`,
      ...(policy.metadata.generation === undefined ? {} : { generation: policy.metadata.generation }),
    });
    await updateCondition(this.deps.writer, policy, desired, (this.deps.now ?? (() => new Date()))());
  }
}
