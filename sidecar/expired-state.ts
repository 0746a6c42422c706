// What a resource looks like to its sessions once the snapshot in force has expired (credential
// past its expiry, or the control plane lost for longer than the snapshot TTL): every statement is
// denied with a 42501 that says why, and new sessions are refused at startup. It is a view over the
// real state, so the session code needs no branch of its own and the service resumes the moment
// the snapshot counts again.
import type { CompiledPolicySet, SqlDecision, StatementClassifier } from '../api/policy/compile.js';
import type { Decision, PolicyAction, RuleRef } from '../api/policy/decision.js';
import type { ClassifyContext } from '../api/sql/classify.js';
import type { PostgresResourceState } from './postgres/session/resource-state.js';

/** Why and since when the snapshot no longer counts. */
export interface SnapshotExpiry {
  /** Epoch ms. */
  readonly at: number;
  /** What denied statements are told (42501) and new sessions' FATAL says: the lost control plane, or the credential. */
  readonly message: string;
}

/** The rule denials name: not a user's rule, so it lives under a policy name no manifest can take. */
export const SNAPSHOT_EXPIRED_RULE_ID = 'gatehouse/snapshot-expired';

/** The real policy's selection and masking, but a decision that is always this deny. */
class ExpiredPolicy implements CompiledPolicySet {
  readonly identity: string;
  readonly resource: string;
  readonly namespace: string;
  readonly policies: readonly string[];
  readonly rules: readonly RuleRef[];
  readonly masking: CompiledPolicySet['masking'];
  readonly recording: boolean;
  readonly syncRecording: boolean;
  readonly credentialTTL: number;
  private readonly rule: RuleRef;

  constructor(
    private readonly inner: CompiledPolicySet,
    private readonly message: string,
  ) {
    this.identity = inner.identity;
    this.resource = inner.resource;
    this.namespace = inner.namespace;
    this.policies = inner.policies;
    this.masking = inner.masking;
    this.recording = inner.recording;
    this.syncRecording = inner.syncRecording;
    this.credentialTTL = inner.credentialTTL;
    this.rule = { id: SNAPSHOT_EXPIRED_RULE_ID, policy: 'gatehouse', namespace: inner.namespace, index: 0, name: 'snapshot-expired', effect: 'deny', message };
    this.rules = [this.rule];
  }

  decide(actions: readonly PolicyAction[]): Decision {
    return this.deny(this.inner.decide(actions));
  }

  decideSql(text: string, classifier: StatementClassifier, context?: ClassifyContext): SqlDecision {
    // The real decision only lends its classification, so metrics and recordings still say what was tried.
    const real = this.inner.decideSql(text, classifier, context);
    return { ...this.deny(real), ...(real.classification ? { classification: real.classification } : {}) };
  }

  decideHttp(method: string, path: string): Decision {
    return this.deny(this.inner.decideHttp(method, path));
  }

  matchingRules(): readonly RuleRef[] {
    return this.rules;
  }

  private deny(real: Decision): Decision {
    return {
      effect: 'deny',
      reason: 'rule',
      rule: this.rule,
      matched: this.rules,
      message: this.message,
      ...(real.action ? { action: real.action } : {}),
      ...(real.operation ? { operation: real.operation } : {}),
    };
  }
}

/**
 * `state` as sessions must see it after `expiry`. The credential is replaced by an expired one
 * without the password: a session starting now is refused before it connects upstream, and the
 * real password is never handed out past its lease.
 */
export function expiredView(state: PostgresResourceState, expiry: SnapshotExpiry): PostgresResourceState {
  // Field by field rather than a spread: a state that becomes a class keeps its methods, and a
  // field added to the interface fails the build here instead of silently going missing.
  return {
    version: state.version,
    identity: state.identity,
    resource: state.resource,
    policy: new ExpiredPolicy(state.policy, expiry.message),
    masker: state.masker,
    catalog: state.catalog,
    copyOutHitsMaskedColumns: (tables) => state.copyOutHitsMaskedColumns(tables),
    credential: { username: state.credential?.username ?? '', password: '', expiresAt: expiry.at },
    ...(state.caPem !== undefined ? { caPem: state.caPem } : {}),
    // Without this a new session's FATAL would blame the placeholder credential, even when the cause is the lost control plane.
    refusal: expiry.message,
  };
}
