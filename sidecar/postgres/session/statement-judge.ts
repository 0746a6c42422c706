// Decides what one session asks the server to run — SQL text (Query, Parse), a prepared statement
// at Bind, a FunctionCall — against the resource state in force at that very moment (so a policy
// reload applies to the next message), and turns every outcome the session must refuse into a
// denial: deny, require-approval while approvals are unavailable, COPY out of masked tables, writes
// that would take masked values where masking does not follow them, and whatever the sidecar cannot
// judge at all. With approvals available, require-approval is `held`.
import { GatehouseError, isGatehouseError } from '../../../api/errors.js';
import type { Decision } from '../../../api/policy/decision.js';
import type { SqlClassifier } from '../../../api/sql/classify.js';
import type { ClassifiedStatement, QualifiedName, SqlAccess, SqlClassification } from '../../../api/sql/operations.js';
import type { Denial } from './denial.js';
import type { StatementRecord } from './prepared-statements.js';
import type { PostgresResourceHandle, PostgresResourceState } from './resource-state.js';
import { WRITE_THROUGH } from './write-through.js';

export interface Judgement {
  readonly decision: Decision;
  readonly classification?: SqlClassification;
  /** Present when the statement must not reach the server. */
  readonly denial?: Denial;
  /** The state the decision was made with (undefined: the identity lost access). */
  readonly state?: PostgresResourceState;
  /**
   * Allowed, but if the server answers with COPY output, that output must be withheld: a `write`
   * COPY on a table with masked columns is either `COPY t FROM STDIN` or
   * `COPY (UPDATE t ... RETURNING ...) TO STDOUT`, and only the server's answer tells which.
   */
  readonly guardCopyOut?: boolean;
  /**
   * Nothing but whitespace, comments and semicolons: the server runs nothing and answers
   * EmptyQueryResponse. Passed, and not counted or recorded as a statement (JDBC's isValid() and
   * pool health checks send these).
   */
  readonly empty?: boolean;
  /** require-approval with an approver available: the session holds it until a human decides. */
  readonly held?: boolean;
}

/** An empty statement is let through; this decision is never shown, counted or recorded. */
const EMPTY_STATEMENT: Judgement = {
  decision: { effect: 'allow', reason: 'no-match', matched: [], message: 'empty statement: nothing runs' },
  classification: { operation: 'session', operations: [], statements: [] },
  empty: true,
};

/** What the metric and the denial name as the blocker of a COPY out of a masked table. */
export const COPY_OF_MASKED_COLUMNS = 'masking/copy-out';
/** What the metric and the denial name as the blocker when a `sync` recording policy cannot record. */
export const RECORDING_FAILING = 'recording/sync';
export const COPY_OUT_REFUSED =
  'COPY ... TO STDOUT is not allowed on tables with masked columns (COPY output has no column names to mask by); use SELECT';

function tablesOf(statement: ClassifiedStatement): QualifiedName[] {
  return statement.accesses.flatMap((access) => (access.relation ? [access.relation] : []));
}

function actionsOf(classification: SqlClassification): SqlAccess[] {
  return classification.statements.flatMap((statement) => statement.accesses);
}

export class StatementJudge {
  /**
   * Judgements of SQL text by decision: the policy hands out one decision object per statement shape
   * (see CompiledPolicySet.decideSql), and the judgement adds only what follows from it and the state.
   */
  private judgements = new WeakMap<Decision, Judgement>();
  /** Judgements of prepared statements at Bind, which repeats for every execution. */
  private bindJudgements = new WeakMap<StatementRecord, Judgement>();
  /** The last entry of `judgements` looked up: a session sends one statement shape after another. */
  private lastJudgement: Judgement | undefined;

  constructor(
    private readonly resource: PostgresResourceHandle,
    private readonly classifier: SqlClassifier,
    /** The classification of a statement the session prepared, for `EXECUTE name`. */
    private readonly prepared: (name: string) => SqlClassification | undefined,
    /** Whether require-approval can be held for a decision (an ApprovalService is configured). */
    private readonly approvalsAvailable = false,
    /** Since when recording has been failing (epoch ms), for policies in `sync` recording mode. */
    private readonly recordingFailingSince: () => number | undefined = () => undefined,
    /** Why statements would take masked values where masking does not follow them (write-through.ts). */
    private readonly writeThrough: (state: PostgresResourceState, classification: SqlClassification | undefined) => string | undefined = () => undefined,
  ) {}

  /** Forgets every judgement: what they were made with changed (the session's column index). */
  forget(): void {
    this.judgements = new WeakMap();
    this.bindJudgements = new WeakMap();
    this.lastJudgement = undefined;
  }

  /** SQL text of a Query or a Parse. */
  text(text: string): Judgement {
    const state = this.resource.current();
    if (!state) return this.noAccess();
    const decision = state.policy.decideSql(text, this.classifier, { preparedStatement: this.prepared });
    if (decision.reason === 'unparsable' && this.isEmpty(text)) return { ...EMPTY_STATEMENT, state };
    const last = this.lastJudgement;
    const cached = last !== undefined && last.decision === decision ? last : this.judgements.get(decision);
    if (cached?.state === state) {
      this.lastJudgement = cached;
      return this.recordingGate(cached, state);
    }
    const judgement = this.judged(state, decision, decision.classification);
    this.judgements.set(decision, judgement);
    this.lastJudgement = judgement;
    return this.recordingGate(judgement, state);
  }

  /**
   * A policy in `sync` recording mode lets nothing run that cannot be recorded: while the recorder
   * is failing, what would have run is refused instead. Applied after the caches, since the
   * recorder's health changes without the policy changing.
   */
  private recordingGate(judgement: Judgement, state: PostgresResourceState): Judgement {
    // Kept this small so it is inlined into every caller; the refusal is made out of line.
    return !state.policy.syncRecording || judgement.denial ? judgement : this.refusedWhileRecordingFails(judgement, state);
  }

  private refusedWhileRecordingFails(judgement: Judgement, state: PostgresResourceState): Judgement {
    const since = this.recordingFailingSince();
    if (since === undefined) return judgement;
    const note = new GatehouseError('GH_ERR_RECORDING_SYNC_REFUSED', {
      since: new Date(since).toISOString(),
      reason: 'uploads of session events to the operator are failing',
      resource: this.resource.name,
    }).message;
    const { held: _held, ...rest } = judgement;
    return { ...rest, denial: { decision: judgement.decision, note, blockedBy: RECORDING_FAILING } };
  }

  /** Asked only of what was refused as unparsable, so the hot path classifies once. */
  private isEmpty(text: string): boolean {
    try {
      this.classifier.classify(text);
      return false;
    } catch (error) {
      return isGatehouseError(error, 'GH_ERR_SQL_EMPTY');
    }
  }

  /** A Bind: the statement as prepared, judged again by the policy in force now. */
  statement(record: StatementRecord): Judgement {
    const state = this.resource.current();
    if (!state) return this.noAccess();
    if (record.classification.statements.length === 0) return { ...EMPTY_STATEMENT, state };
    const cached = this.bindJudgements.get(record);
    if (cached?.state === state) return this.recordingGate(cached, state);
    const decision = { ...state.policy.decide(actionsOf(record.classification)), classification: record.classification };
    const judgement = this.judged(state, decision, record.classification);
    this.bindJudgements.set(record, judgement);
    return this.recordingGate(judgement, state);
  }

  /**
   * A Bind to a name the sidecar never saw prepared (say, by dynamic SQL inside a function): what
   * the server would run is unknown, so it is denied.
   */
  unknownStatement(name: string): Judgement {
    const decision: Decision = {
      effect: 'deny',
      reason: 'unparsable',
      matched: [],
      message: `prepared statement ${JSON.stringify(name)} was not prepared through this connection, so Gatehouse cannot tell what it runs; prepare it again`,
    };
    return { decision, denial: { decision }, ...this.withState() };
  }

  /**
   * A FunctionCall names its function by OID only, and the function may be anything, from abs() to
   * pg_terminate_backend() or lo_import(); without a catalog lookup it counts as the strictest
   * thing a function can do: admin.
   */
  functionCall(functionOid: number): Judgement {
    const state = this.resource.current();
    if (!state) return this.noAccess();
    const decision = state.policy.decide([{ operation: 'admin', function: { name: `oid:${functionOid}` } }]);
    return this.recordingGate(this.judged(state, decision, undefined), state);
  }

  private withState(): { state?: PostgresResourceState } {
    const state = this.resource.current();
    return state ? { state } : {};
  }

  private judged(state: PostgresResourceState, decision: Decision, classification: SqlClassification | undefined): Judgement {
    const denial = denialFor(state, decision, classification, this.approvalsAvailable) ?? this.writeThroughDenial(state, decision, classification);
    const guardCopyOut = !denial && maskedCopies(state, classification).some((statement) => statement.operation === 'write');
    const held = !denial && decision.effect === 'require-approval';
    return {
      decision,
      state,
      ...(classification ? { classification } : {}),
      ...(denial ? { denial } : {}),
      ...(guardCopyOut ? { guardCopyOut } : {}),
      ...(held ? { held } : {}),
    };
  }

  private writeThroughDenial(state: PostgresResourceState, decision: Decision, classification: SqlClassification | undefined): Denial | undefined {
    if (decision.effect === 'deny' || !state.masker.masksColumns) return undefined;
    const note = this.writeThrough(state, classification);
    return note === undefined ? undefined : { decision, note, blockedBy: WRITE_THROUGH };
  }

  private noAccess(): Judgement {
    const decision: Decision = {
      effect: 'deny',
      reason: 'no-policy',
      matched: [],
      message: `identity no longer has access to ${this.resource.name}`,
    };
    return { decision, denial: { decision } };
  }
}

/** COPY statements that touch a table with masked columns (or any, for a bare-column rule). */
function maskedCopies(state: PostgresResourceState, classification: SqlClassification | undefined): ClassifiedStatement[] {
  return (classification?.statements ?? []).filter(
    (statement) => statement.command === 'COPY' && state.copyOutHitsMaskedColumns(tablesOf(statement)),
  );
}

function denialFor(
  state: PostgresResourceState,
  decision: Decision,
  classification: SqlClassification | undefined,
  approvalsAvailable: boolean,
): Denial | undefined {
  if (decision.effect === 'deny') return { decision };
  if (decision.effect === 'require-approval' && !approvalsAvailable) {
    // Approvals arrive with the control plane; until a human can approve, a held statement is a deny.
    return { decision, note: `${decision.message || 'this statement needs approval'}; approvals are not available in this deployment, so it is denied` };
  }
  // Every COPY but a `write` one produces output (read, or a function, or DELETE ... RETURNING).
  if (maskedCopies(state, classification).some((statement) => statement.operation !== 'write')) {
    return { decision, note: COPY_OUT_REFUSED, blockedBy: COPY_OF_MASKED_COLUMNS };
  }
  return undefined;
}
