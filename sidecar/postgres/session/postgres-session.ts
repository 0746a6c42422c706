// One app connection through the sidecar to PostgreSQL: the startup (the app's own credentials are
// ignored; the sidecar logs in upstream with the resource credential), then every message both ways.
// Client messages that carry statements are classified and decided; server messages are passed on
// as raw frames, except rows and errors that masking must rewrite and errors standing for denials.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { GatehouseError, isGatehouseError } from '../../../api/errors.js';
import type { Logger } from '../../../api/logging/logger.js';
import type { Decision } from '../../../api/policy/decision.js';
import type { SqlClassifier } from '../../../api/sql/classify.js';
import type { ClassifiedStatement, SqlClassification } from '../../../api/sql/operations.js';
import { UNKNOWN_LINEAGE, type OutputLineage } from '../../../api/sql/output-lineage.js';
import type { ColumnLineage } from '../../masking/column-matcher.js';
import type { ColumnPlan, Masker, ResultColumn } from '../../masking/masker.js';
import type { SidecarMetrics } from '../../metrics/sidecar-metrics.js';
import { SessionMetrics } from '../../metrics/session-metrics.js';
import { eventTimestamp, type SessionEvent, type SessionRecording, type SessionRecorder } from '../../recording/session-recorder.js';
import {
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
} from '../protocol/backend-encoders.js';
import { decodeBackendMessage, type RowField } from '../protocol/backend-messages.js';
import { CommandTagReader } from '../protocol/command-tags.js';
import { FrameBatch } from '../protocol/frame-batch.js';
import { FrameSplitter, ReceivedFrame } from '../protocol/frame-splitter.js';
import { asciiQueryText, decodeFrontendMessage, type BindMessage, type FrontendMessage, type ParseMessage } from '../protocol/frontend-messages.js';
import { encodeDescribe } from '../protocol/frontend-encoders.js';
import { noticeFromFields } from '../protocol/notice-fields.js';
import {
  decodeStartupPhaseMessage,
  encodeEncryptionRefused,
  type BackendKey,
  type StartupMessage,
} from '../protocol/startup-messages.js';
import { connectUpstream, type UpstreamConnection } from '../upstream/upstream-connection.js';
import { columnKey, resolveLineage, sourceLineage, type ColumnCatalog, type ColumnIndex } from './column-catalog.js';
import {
  blockedLabel,
  denialErrorResponse,
  injectedParse,
  injectedQuery,
  newDenialToken,
  sidecarError,
  type Denial,
} from './denial.js';
import { anonymousPlan, DataRowMasker, maskCopyDataFrame, maskForRecord, maskNotice, maskNoticeFrame, maskNotificationFrame } from './message-masking.js';
import {
  PendingRequests,
  formatsFor,
  undoUnfinishedPrepares,
  type ActiveResult,
  type PendingRequest,
  type QueryPrepares,
  type ResultLayout,
  type StatementTiming,
} from './pending-requests.js';
import { PreparedStatements, type ProvisionalChange, type StatementRecord } from './prepared-statements.js';
import { PASS_THROUGH_RESULT, ResultPlans } from './result-plans.js';
import { columnLineages } from './result-lineage.js';
import { upstreamTlsOptions, type PostgresResourceHandle, type PostgresResourceState } from './resource-state.js';
import { COPY_OUT_REFUSED, StatementJudge, type Judgement } from './statement-judge.js';
import { filterStartupParameters } from './startup-parameters.js';
import { describeDeciders, statementFingerprint, type ApprovalDecision, type ApprovalRequest } from '../../../api/approvals/approval-service.js';
import type { StatementApprovals } from '../../approvals/statement-approvals.js';
import { setChunkHandler } from '../../net/direct-reads.js';
import { writeThroughRefusal } from './write-through.js';

export interface SessionLimits {
  /** Largest client message accepted, in bytes. */
  readonly maxClientMessageBytes: number;
  readonly startupTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamAuthTimeoutMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxClientMessageBytes: 64 * 1024 * 1024,
  startupTimeoutMs: 15_000,
  upstreamConnectTimeoutMs: 10_000,
  upstreamAuthTimeoutMs: 10_000,
};

/** Maps the keys the sidecar hands to apps onto the real upstream backends, for CancelRequest. */
export interface CancelRegistry {
  register(clientKey: BackendKey, cancel: () => Promise<void>): void;
  unregister(clientKey: BackendKey): void;
  cancel(clientKey: BackendKey): Promise<void>;
}

export interface SessionDependencies {
  readonly resource: PostgresResourceHandle;
  readonly classifier: SqlClassifier;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  readonly recorder: SessionRecorder;
  readonly cancels: CancelRegistry;
  readonly limits: SessionLimits;
  readonly sendCancel: (state: PostgresResourceState, key: BackendKey) => Promise<void>;
  /** Where require-approval statements are held for a decision; without it they are denied. */
  readonly approvals?: StatementApprovals;
}

const PROTOCOL_VIOLATION = '08P01';
const CANNOT_CONNECT = '08001';
const INVALID_AUTHORIZATION = '28000';
const FEATURE_NOT_SUPPORTED = '0A000';
const ADMIN_SHUTDOWN = '57P01';
/** How long a client gets to read a FATAL and close before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

const TEXT_DECODER_OPTIONS = 'utf8';

/** Milliseconds since `since`, to the microsecond: finer digits mean nothing and cost more to write. */
function elapsedMs(since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000;
}

function asClassification(statement: ClassifiedStatement): SqlClassification {
  return { operation: statement.operation, operations: [statement.operation], statements: [statement] };
}

type StatementEvent = Extract<SessionEvent, { readonly type: 'statement' }>;

/** A COPY out in progress: how its data is masked, or why it is withheld. */
type CopyOut = { readonly plan: ColumnPlan | undefined; readonly withhold: string | undefined; withheld: boolean };

/** Set at Bind from the statement's judgement, applied at Execute. */
interface PortalEffects {
  /** See Judgement.guardCopyOut. */
  readonly guardCopyOut: boolean;
  /** SQL PREPAREs the statement holds, registered when executed. */
  readonly prepares: readonly ClassifiedStatement[];
}

const BINARY_COPY_WITHHELD = 'binary COPY output cannot be masked; use FORMAT text or csv';
const QUERY_CANCELED = '57014';
/** Client bytes read ahead while a statement is held, before the client socket is paused. */
const HELD_READ_AHEAD_BYTES = 1024 * 1024;

/** A statement waiting for a human decision: its frame (copied), replayed when released. */
interface HeldStatement {
  readonly frame: ReceivedFrame;
  readonly withdraw: AbortController;
}

export class PostgresSession {
  readonly id = randomUUID();
  private readonly log: Logger;
  private readonly clientFrames: FrameSplitter;
  private serverFrames = new FrameSplitter({ source: 'server' });
  private upstream: UpstreamConnection | undefined;
  private state: PostgresResourceState | undefined;
  private recording: SessionRecording | undefined;
  private clientKey: BackendKey | undefined;
  private readonly denialToken = newDenialToken();
  private readonly pending = new PendingRequests();
  /** Prepared statements by name, as the server holds them (Parse and SQL PREPARE share the namespace). */
  private readonly statements = new PreparedStatements();
  private readonly judge: StatementJudge;
  private readonly rowMasker = new DataRowMasker();
  private readonly commandTags = new CommandTagReader();
  private readonly resultPlans = new ResultPlans((masker, fields, lineage) => this.planResult(masker, fields, lineage));
  /**
   * What each bound portal's statement computes its columns from, for masking computed columns.
   * A portal missing here (a cursor DECLAREd in SQL) has unknown lineage.
   */
  private readonly portalLineage = new Map<string, OutputLineage | undefined>();
  /** What executing a portal does beyond its rows, by portal name; only portals that do something. */
  private readonly portalEffects = new Map<string, PortalEffects>();
  private discardUntilSync = false;
  private active: ActiveResult | undefined;
  private columnIndex: ColumnIndex = new Map();
  /** The catalog (one per policy snapshot) columnIndex was read for. */
  private indexCatalog: ColumnCatalog | undefined;
  private copyOut: CopyOut | undefined;
  private phase: 'startup' | 'connecting' | 'ready' | 'held' | 'closed' = 'startup';
  /** While phase is 'held': the statement waiting for approval; client frames after it wait in the splitter. */
  private held: HeldStatement | undefined;
  /** While a released statement is replayed: undefined to run it, a Denial to refuse it. */
  private released: { readonly denial: Denial | undefined } | undefined;
  private heldReadPaused = false;
  private readonly started = performance.now();
  private closeReason = 'client closed';
  private startupTimer: NodeJS.Timeout | undefined;
  private labels = { resource: '', identity: '' };
  private metrics: SessionMetrics;
  /** One side is paused until the other drains its write buffer (backpressure, bounded memory). */
  private readonly paused = { upstream: false, client: false };
  private ended = false;
  private upstreamFailureCounted = false;

  constructor(
    private readonly client: Socket,
    private readonly deps: SessionDependencies,
  ) {
    this.labels = { resource: deps.resource.name, identity: deps.resource.current()?.identity ?? 'unknown' };
    this.metrics = new SessionMetrics(deps.metrics, this.labels);
    this.log = deps.logger.child({ session: this.id, resource: deps.resource.name });
    this.clientFrames = new FrameSplitter({
      source: 'client',
      phase: 'startup',
      maxFrameBytes: deps.limits.maxClientMessageBytes,
    });
    this.judge = new StatementJudge(
      deps.resource, deps.classifier, (name) => this.statements.get(name)?.classification, deps.approvals !== undefined,
      () => deps.recorder.unhealthySince?.(),
      (state, classification) => writeThroughRefusal(classification, state.masker, this.columnIndex, state.catalog === this.indexCatalog),
    );
  }

  /** Starts handling the socket; resolves when the session has ended. */
  run(): Promise<void> {
    return new Promise((resolve) => {
      this.client.setNoDelay(true);
      setChunkHandler(this.client, (chunk) => this.onClientData(chunk));
      this.client.on('error', (error) => this.log.debug({ err: error.message }, 'client socket error'));
      this.client.on('close', () => {
        this.end(this.closeReason);
        resolve();
      });
      this.startupTimer = setTimeout(() => {
        if (this.phase === 'startup') this.fatal(PROTOCOL_VIOLATION, 'no startup message in time', 'startup timeout');
      }, this.deps.limits.startupTimeoutMs);
      // The listener accepts connections paused (see adoptAccepted); reading starts with the session.
      this.client.resume();
    });
  }

  /** Ends the session from outside (drain, revoked access). */
  terminate(reason: string): void {
    if (this.phase === 'closed') return;
    this.closeReason = reason;
    this.closeClient(sidecarError('FATAL', ADMIN_SHUTDOWN, `session closed: ${reason}`));
    this.upstream?.socket.destroy();
  }

  // ── client → sidecar ───────────────────────────────────────────────────────────────────────

  private onClientData(chunk: Buffer): void {
    const started = this.metrics.requestLatency.start();
    try {
      this.clientFrames.push(chunk);
      if (this.phase === 'startup') {
        this.readStartup();
        return;
      }
      if (this.phase === 'held') return this.limitHeldReadAhead();
      if (this.phase !== 'ready') return; // connecting: the socket is paused, frames wait in the splitter
      this.forwardClientFrames(chunk);
    } catch (error) {
      this.onProtocolError(error);
      return;
    }
    this.metrics.requestLatency.end(started);
  }

  private readStartup(): void {
    for (let frame = this.clientFrames.next(); frame; frame = this.clientFrames.next()) {
      const message = decodeStartupPhaseMessage(frame.payload);
      if (message.kind === 'SSLRequest' || message.kind === 'GSSENCRequest') {
        // Loopback inside the pod: no encryption to offer. Bytes sent before our answer would be an
        // injection attempt (CVE-2021-23222), so they end the connection.
        if (this.clientFrames.bufferedBytes > 0) throw new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: 'data after encryption request' });
        this.client.write(encodeEncryptionRefused());
        continue;
      }
      if (message.kind === 'CancelRequest') {
        this.phase = 'closed';
        this.closeReason = 'cancel request';
        clearTimeout(this.startupTimer);
        void this.deps.cancels.cancel({ processId: message.processId, secretKey: message.secretKey }).finally(() => this.client.destroy());
        return;
      }
      this.phase = 'connecting';
      this.clientFrames.phase = 'regular';
      // Nothing is read while the upstream is being set up: an app cannot make the sidecar buffer
      // more than the socket's own window.
      this.client.pause();
      this.startSession(message).catch((error: unknown) => {
        this.log.error({ code: isGatehouseError(error) ? error.code : undefined, err: (error as Error).message }, 'session start failed');
        this.fatal(PROTOCOL_VIOLATION, 'the sidecar could not start this session', 'protocol error');
      });
      return;
    }
  }

  private async startSession(startup: StartupMessage): Promise<void> {
    clearTimeout(this.startupTimer);
    if (startup.replication !== 'none') {
      return this.fatal(FEATURE_NOT_SUPPORTED, new GatehouseError('GH_ERR_PG_REPLICATION_REFUSED').message, 'replication refused');
    }
    const state = this.deps.resource.current();
    const refusal = this.accessRefusal(state);
    if (refusal || !state) return this.fatal(INVALID_AUTHORIZATION, refusal ?? 'no policy', 'no access');
    this.state = state;
    this.labels = { resource: state.resource.metadata.name, identity: state.identity };
    this.metrics = new SessionMetrics(this.deps.metrics, this.labels);
    let parameters: Map<string, string>;
    try {
      parameters = filterStartupParameters(startup.parameters).forward;
    } catch (error) {
      return this.fatal(FEATURE_NOT_SUPPORTED, (error as Error).message, 'bad startup parameters');
    }
    try {
      this.upstream = await this.connect(state, parameters);
      this.columnIndex = await state.catalog.indexFor(this.upstream);
      this.indexCatalog = state.catalog;
    } catch (error) {
      this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind: isGatehouseError(error) ? error.code : 'io' });
      const message = isGatehouseError(error) ? error.message : 'upstream connection failed';
      this.log.warn({ code: isGatehouseError(error) ? error.code : undefined }, 'upstream connection failed');
      this.upstream?.socket.destroy();
      return this.fatal(CANNOT_CONNECT, `cannot connect to ${state.resource.metadata.name}: ${message}`, 'upstream error');
    }
    if (this.phase !== 'connecting' || this.client.destroyed) {
      this.upstream.socket.destroy();
      return;
    }
    this.attachUpstream(startup);
  }

  private accessRefusal(state: PostgresResourceState | undefined): string | undefined {
    if (!state) return `identity has no access to ${this.deps.resource.name}`;
    if (state.refusal !== undefined) return state.refusal;
    if (state.policy.policies.length === 0) return `no AccessPolicy grants ${state.identity} access to ${state.resource.metadata.name}`;
    if (!state.credential) return `no credential available for ${state.resource.metadata.name}`;
    if (state.credential.expiresAt !== undefined && state.credential.expiresAt <= Date.now()) {
      return `the credential for ${state.resource.metadata.name} has expired`;
    }
    return undefined;
  }

  private connect(state: PostgresResourceState, parameters: Map<string, string>): Promise<UpstreamConnection> {
    const [host, port] = splitAddress(state.resource.spec.address);
    const application = parameters.get('application_name');
    parameters.delete('application_name');
    return connectUpstream({
      host,
      port,
      database: state.resource.spec.database ?? 'postgres',
      user: state.credential!.username,
      password: state.credential!.password,
      tls: upstreamTlsOptions(state),
      applicationName: application ? `${application} via gatehouse` : 'gatehouse',
      parameters,
      connectTimeoutMs: this.deps.limits.upstreamConnectTimeoutMs,
      authTimeoutMs: this.deps.limits.upstreamAuthTimeoutMs,
    });
  }

  private attachUpstream(startup: StartupMessage): void {
    const upstream = this.upstream!;
    const state = this.state!;
    const keyBytes = randomBytes(8);
    this.clientKey = { processId: keyBytes.readUInt32BE(0) & 0x7fffffff, secretKey: keyBytes.readUInt32BE(4) };
    const realKey = upstream.backendKey;
    this.deps.cancels.register(this.clientKey, () => this.cancelRequested(state, realKey));
    const greeting: Buffer[] = [encodeAuthenticationOk()];
    for (const [name, value] of upstream.parameters) greeting.push(encodeParameterStatus(name, value));
    greeting.push(encodeBackendKeyData(this.clientKey), encodeReadyForQuery('I'));
    this.client.write(Buffer.concat(greeting));
    this.openRecording(state, startup);
    this.deps.metrics.activeSessions.inc(this.labels);
    this.phase = 'ready';
    upstream.socket.setNoDelay(true);
    setChunkHandler(upstream.socket, (chunk) => this.onServerData(chunk));
    upstream.socket.on('error', (error) => {
      this.countUpstreamFailure('io');
      this.log.warn({ err: error.message }, 'upstream socket error');
    });
    upstream.socket.on('close', () => this.onUpstreamClosed());
    upstream.socket.on('drain', () => this.resume('client'));
    this.client.on('drain', () => this.resume('upstream'));
    if (upstream.leftover.length > 0) this.onServerData(upstream.leftover);
    upstream.socket.resume();
    this.client.resume();
    this.log.info({ identity: state.identity, application: startup.parameters.get('application_name') }, 'session started');
    this.forwardClientFrames();
  }

  private openRecording(state: PostgresResourceState, startup: StartupMessage): void {
    if (!state.policy.recording) return;
    this.recording = this.deps.recorder.open({
      session: this.id,
      identity: state.identity,
      resource: state.resource.metadata.name,
      protocol: 'postgres',
    });
    const client: Record<string, string> = { address: this.client.remoteAddress ?? '' };
    for (const name of ['application_name', 'user', 'database']) {
      const value = startup.parameters.get(name);
      if (value !== undefined) client[name] = value;
    }
    this.recording.write({ type: 'connect', at: eventTimestamp(), client });
  }

  // ── backpressure ───────────────────────────────────────────────────────────────────────────

  /** Writes to one side; if its buffer is full, stops reading the other side until it drains. */
  private relay(to: 'client' | 'upstream', data: Buffer): void {
    const socket = to === 'client' ? this.client : this.upstream!.socket;
    if (socket.write(data)) return;
    const from = to === 'client' ? 'upstream' : 'client';
    if (this.paused[from]) return;
    this.paused[from] = true;
    (from === 'client' ? this.client : this.upstream!.socket).pause();
  }

  private resume(side: 'client' | 'upstream'): void {
    if (!this.paused[side] || this.phase !== 'ready') return;
    this.paused[side] = false;
    (side === 'client' ? this.client : this.upstream!.socket).resume();
  }

  // ── client messages ────────────────────────────────────────────────────────────────────────

  /** @param received the chunk just read, if the frames come from it (see FrameBatch) */
  private forwardClientFrames(received?: Buffer): void {
    const out = new FrameBatch(received);
    for (let frame = this.clientFrames.next(); frame; frame = this.clientFrames.next()) {
      this.handleClientFrame(frame, out);
      if (this.phase !== 'ready') break;
    }
    const bytes = out.take();
    if (bytes) this.relay('upstream', bytes);
  }

  private handleClientFrame(frame: ReceivedFrame, out: FrameBatch): void {
    const type = String.fromCharCode(frame.type);
    // Fast path: messages that carry no statement pass as they are.
    switch (type) {
      case 'S':
        this.discardUntilSync = false;
        this.pending.push({ kind: 'sync' });
        out.addFrame(frame);
        return;
      case 'H':
      case 'd':
      case 'c':
      case 'f':
        out.addFrame(frame);
        return;
    }
    // A plain-ASCII Query, the commonest message with a statement, is read without the general decoder.
    const sql = type === 'Q' && !this.discardUntilSync ? asciiQueryText(frame) : undefined;
    if (sql !== undefined) return this.onQuery(sql, frame, out);
    const message = decodeFrontendMessage(frame);
    // After a denial the server skips everything up to Sync, a Query or FunctionCall included; so
    // does the sidecar, or it would wait for answers that never come and pair rows with the wrong request.
    if (this.discardUntilSync && message.kind !== 'Terminate') return;
    this.handleMessage(message, frame, out);
  }

  private handleMessage(message: FrontendMessage, frame: ReceivedFrame, out: FrameBatch): void {
    switch (message.kind) {
      case 'Query':
        return this.onQuery(message.sql, frame, out);
      case 'Parse':
        return this.onParse(message, frame, out);
      case 'Bind':
        return this.onBind(message, frame, out);
      case 'Execute':
        return this.onExecute(message.portal, frame, out);
      case 'Describe':
        this.pending.push({ kind: 'describe' });
        out.addFrame(frame);
        return;
      case 'Close': {
        const change = message.target === 'statement' ? this.statements.remove(message.name) : undefined;
        if (message.target === 'portal') this.portalLineage.delete(message.name);
        this.pending.push({ kind: 'close', ...(change ? { change } : {}) });
        out.addFrame(frame);
        return;
      }
      case 'FunctionCall':
        return this.onFunctionCall(message.functionOid, frame, out);
      case 'Terminate':
        this.closeReason = 'client terminated';
        out.addFrame(frame);
        this.phase = 'closed';
        return;
      default:
        throw new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: `unexpected ${message.kind} message` });
    }
  }

  // ── decisions ──────────────────────────────────────────────────────────────────────────────

  /** Counts, records and logs a judgement; the state it was made with becomes the session's. */
  private account(judgement: Judgement, text: string, parameters?: (string | null)[]): void {
    if (judgement.state) this.state = judgement.state;
    if (judgement.empty) return;
    const { decision, denial } = judgement;
    const effect = denial ? 'deny' : decision.effect;
    this.metrics.statement(decision.operation ?? 'unknown', effect);
    if (denial) {
      this.metrics.blocked(blockedLabel(denial));
      this.log.info({ rule: decision.rule?.id, reason: decision.reason, operation: decision.operation }, 'statement denied');
    }
    this.record(text, decision, denial, parameters);
  }

  private record(text: string, decision: Decision, denial: Denial | undefined, parameters?: (string | null)[]): void {
    if (!this.recording) return;
    // Values in statements are masked as they would be in results (a card number in a WHERE).
    const event: { -readonly [K in keyof StatementEvent]: StatementEvent[K] } = {
      type: 'statement',
      at: eventTimestamp(),
      text: maskForRecord(this.state?.masker, text),
      operation: decision.operation ?? 'unknown',
      decision: denial ? 'deny' : decision.effect,
    };
    // Optional fields assigned, not spread: this runs for every recorded statement (the line's field order is eventLine's).
    if (parameters) event.parameters = parameters;
    if (decision.rule) event.rule = decision.rule.id;
    this.recording.write(event);
  }

  private onQuery(sql: string, frame: ReceivedFrame, out: FrameBatch): void {
    let judgement = this.judge.text(sql);
    if (judgement.held) {
      const gate = this.gate(judgement, sql, frame);
      if (gate === 'held') return;
      judgement = gate ? { ...judgement, denial: gate } : judgement;
    }
    this.account(judgement, sql);
    // Only the recording reads the timing: without one, no clock read per statement.
    const timing: StatementTiming | undefined = this.recording ? { started: performance.now() } : undefined;
    if (judgement.denial) {
      this.pending.push({ kind: 'query', timing, denial: judgement.denial });
      out.add(injectedQuery(this.denialToken));
      return;
    }
    this.forgetPortalsOnCursorChange(judgement.classification);
    const prepares = this.prepareAll(judgement.classification?.statements ?? []);
    // Optional fields assigned, not spread: this runs for every Query.
    const request: { -readonly [K in keyof QueryRequest]: QueryRequest[K] } = { kind: 'query', timing };
    if (prepares) request.prepares = prepares;
    if (judgement.guardCopyOut) request.guardCopyOut = true;
    // Which statement each result set belongs to, for masking its computed columns; only while masking is on.
    if (judgement.classification && this.state?.masker.active) request.outputs = { statements: judgement.classification.statements, next: 0 };
    this.pending.push(request);
    out.addFrame(frame);
  }

  /**
   * A DECLARE or CLOSE in SQL may give a portal name another query: what was known of portals goes
   * (their computed columns then count as unknown until bound again).
   */
  private forgetPortalsOnCursorChange(classification: SqlClassification | undefined): void {
    if (this.portalLineage.size === 0 || !classification) return;
    if (classification.statements.some((statement) => statement.command.startsWith('DECLARE') || statement.command.startsWith('CLOSE'))) this.portalLineage.clear();
  }

  /** SQL PREPAREs of a Query or Execute, provisional until their PREPARE tags come back. */
  private prepareAll(statements: readonly ClassifiedStatement[]): QueryPrepares | undefined {
    // A loop rather than flatMap: this runs for every Query, and almost none PREPAREs anything.
    let changes: ProvisionalChange[] | undefined;
    for (const statement of statements) {
      if (statement.prepares === undefined) continue;
      (changes ??= []).push(this.statements.define(statement.prepares, { text: statement.text, classification: asClassification(statement) }));
    }
    return changes ? { changes, completed: 0 } : undefined;
  }

  private onParse(message: ParseMessage, frame: ReceivedFrame, out: FrameBatch): void {
    const judgement = this.judge.text(message.query);
    if (judgement.denial || !judgement.classification) {
      // Allowed statements are counted and recorded when executed (Bind); denied ones here.
      this.account(judgement, message.query);
      this.denyExtended(judgement.denial ?? { decision: judgement.decision }, out);
      return;
    }
    const change = this.statements.define(message.statement, { text: message.query, classification: judgement.classification });
    this.pending.push({ kind: 'parse', change });
    out.addFrame(frame);
  }

  private onBind(message: BindMessage, frame: ReceivedFrame, out: FrameBatch): void {
    const statement = this.statements.get(message.statement);
    // Decided again at Bind: a policy edit since the Parse applies to this execution.
    let judgement = statement ? this.judge.statement(statement) : this.judge.unknownStatement(message.statement);
    const text = statement?.text ?? `<Bind of unknown prepared statement ${JSON.stringify(message.statement)}>`;
    if (judgement.held) {
      // Held at Bind, before its Execute: the Parse only prepared it, which runs nothing.
      const gate = this.gate(judgement, text, frame, this.parametersForRecord(message));
      if (gate === 'held') return;
      judgement = gate ? { ...judgement, denial: gate } : judgement;
    }
    this.account(judgement, text, this.recording ? this.parametersForRecord(message) : undefined);
    if (judgement.denial) {
      this.denyExtended(judgement.denial, out);
      return;
    }
    this.setPortalEffects(message.portal, judgement);
    this.forgetPortalsOnCursorChange(judgement.classification);
    // A Parse holds one statement; the classification was made of its text.
    if (judgement.classification) this.portalLineage.set(message.portal, judgement.classification.statements[0]?.outputs);
    else this.portalLineage.delete(message.portal);
    this.pending.push({ kind: 'bind' });
    out.addFrame(frame);
  }

  /**
   * A stale entry (the portal has gone since) only affects a later cursor of that name, which can
   * neither COPY nor PREPARE.
   */
  private setPortalEffects(portal: string, judgement: Judgement): void {
    const prepares = (judgement.classification?.statements ?? []).filter((statement) => statement.prepares !== undefined);
    if (!judgement.guardCopyOut && prepares.length === 0) this.portalEffects.delete(portal);
    else this.portalEffects.set(portal, { guardCopyOut: judgement.guardCopyOut === true, prepares });
  }

  private parametersForRecord(message: BindMessage): (string | null)[] {
    const masker = this.state?.masker;
    return message.params.map((param, index) => {
      if (param === null) return null;
      const format = message.paramFormats.length === 1 ? message.paramFormats[0] : message.paramFormats[index];
      if (format === 1) return `\\x${param.toString('hex')}`;
      return maskForRecord(masker, param.toString(TEXT_DECODER_OPTIONS));
    });
  }

  private onExecute(portal: string, frame: ReceivedFrame, out: FrameBatch): void {
    // Rows of an Execute come without a RowDescription. While masking is on, a Describe of the
    // portal goes just before it, every time: the portal may be a cursor DECLAREd in SQL, or a name
    // reused since it was last described, and only the server knows what it returns now.
    const state = this.deps.resource.current();
    if (state) this.state = state;
    const lineage = this.portalLineage.has(portal) ? this.portalLineage.get(portal) : UNKNOWN_LINEAGE;
    const layout: ResultLayout | undefined = state?.masker.active ? { lineage } : undefined;
    if (layout) {
      out.add(encodeDescribe({ target: 'portal', name: portal }));
      this.pending.push({ kind: 'describe', layout });
    }
    const effects = this.portalEffects.get(portal);
    const prepares = effects ? this.prepareAll(effects.prepares) : undefined;
    this.pending.push({
      kind: 'execute',
      layout,
      timing: { started: performance.now() },
      ...(effects?.guardCopyOut ? { guardCopyOut: true } : {}),
      ...(prepares ? { prepares } : {}),
    });
    out.addFrame(frame);
  }

  private onFunctionCall(functionOid: number, frame: ReceivedFrame, out: FrameBatch): void {
    let judgement = this.judge.functionCall(functionOid);
    if (judgement.held) {
      const gate = this.gate(judgement, `<FunctionCall oid ${functionOid}>`, frame);
      if (gate === 'held') return;
      judgement = gate ? { ...judgement, denial: gate } : judgement;
    }
    this.account(judgement, `<FunctionCall oid ${functionOid}>`);
    if (judgement.denial) {
      this.pending.push({ kind: 'query', denial: judgement.denial });
      out.add(injectedQuery(this.denialToken));
      return;
    }
    this.pending.push({ kind: 'query' });
    out.addFrame(frame);
  }

  private denyExtended(denial: Denial, out: FrameBatch): void {
    this.pending.push({ kind: 'denied', denial });
    out.add(injectedParse(this.denialToken));
    this.discardUntilSync = true;
  }

  // ── approvals ──────────────────────────────────────────────────────────────────────────────

  /**
   * A require-approval statement goes ahead (undefined) when it is being replayed after an approval
   * or a grant window covers it, is refused (a Denial) when replayed after a refusal, and is
   * otherwise held: nothing after it is read from the client's pipeline until someone decides.
   */
  private gate(judgement: Judgement, text: string, frame: ReceivedFrame, parameters?: readonly (string | null)[]): Denial | 'held' | undefined {
    const released = this.released;
    if (released) {
      this.released = undefined;
      return released.denial;
    }
    const approvals = this.deps.approvals!;
    const request = this.approvalRequest(judgement.decision, text, parameters);
    const grantedBy = approvals.takeGrant(request, judgement.decision.rule?.approval);
    if (grantedBy) {
      this.log.info({ rule: judgement.decision.rule?.id, fingerprint: request.fingerprint, grantedBy }, 'statement runs under an approval grant');
      return undefined;
    }
    const copy = Buffer.from(frame.source.subarray(frame.start, frame.end));
    const held: HeldStatement = { frame: new ReceivedFrame(frame.type, copy, 0, copy.length, 5), withdraw: new AbortController() };
    this.held = held;
    this.phase = 'held';
    this.log.info({ rule: judgement.decision.rule?.id, fingerprint: request.fingerprint }, 'statement held for approval');
    approvals.decide(request, judgement.decision.rule?.approval, held.withdraw.signal).then(
      (decision) => this.release(held, approvalDenial(judgement.decision, decision)),
      () => this.release(held, { decision: judgement.decision, code: QUERY_CANCELED, note: 'canceling statement due to user request (it was waiting for approval)' }),
    );
    return 'held';
  }

  private approvalRequest(decision: Decision, text: string, parameters: readonly (string | null)[] | undefined): ApprovalRequest {
    // What approvers (and their chat channel) see is masked like a recording; the fingerprint is of the real text.
    const masked = maskForRecord(this.state?.masker, text);
    const shown = parameters && parameters.length > 0 ? `${masked}\n-- parameters: ${JSON.stringify(parameters)}` : masked;
    return {
      identity: this.labels.identity,
      resource: this.labels.resource,
      policy: decision.rule?.policy ?? '',
      rule: decision.rule?.name ?? '',
      pod: this.deps.approvals!.pod,
      statement: shown,
      fingerprint: statementFingerprint(text),
      reason: decision.message,
    };
  }

  /** The decision arrived (or the hold was withdrawn): the held frame is replayed, then what queued behind it. */
  private release(held: HeldStatement, denial: Denial | undefined): void {
    if (this.held !== held || this.phase !== 'held') return;
    this.held = undefined;
    this.phase = 'ready';
    this.released = { denial };
    const out = new FrameBatch();
    try {
      this.handleMessage(decodeFrontendMessage(held.frame), held.frame, out);
    } catch (error) {
      this.onProtocolError(error);
      return;
    } finally {
      this.released = undefined;
    }
    const bytes = out.take();
    if (bytes) this.relay('upstream', bytes);
    // Drains missed while held are caught up now; a full buffer just pauses again.
    this.resume('client');
    this.resume('upstream');
    if (this.heldReadPaused && !this.paused.client) this.client.resume();
    this.heldReadPaused = false;
    if (this.phase === 'ready') this.forwardClientFrames();
  }

  /** A client pipelining behind a held statement may queue this much before its socket is paused. */
  private limitHeldReadAhead(): void {
    if (this.heldReadPaused || this.clientFrames.bufferedBytes < HELD_READ_AHEAD_BYTES) return;
    this.heldReadPaused = true;
    this.client.pause();
  }

  /** A CancelRequest with this session's key: withdraws a held statement, or cancels the one the server runs. */
  private cancelRequested(state: PostgresResourceState, realKey: BackendKey | undefined): Promise<void> {
    if (this.held) {
      this.held.withdraw.abort();
      return Promise.resolve();
    }
    return realKey ? this.deps.sendCancel(state, realKey) : Promise.resolve();
  }

  // ── server → client ────────────────────────────────────────────────────────────────────────

  private onServerData(chunk: Buffer): void {
    const started = this.metrics.responseLatency.start();
    const out = new FrameBatch(chunk);
    try {
      this.serverFrames.push(chunk);
      for (let frame = this.serverFrames.next(); frame; frame = this.serverFrames.next()) {
        const replacement = this.handleServerFrame(frame, out);
        if (replacement === undefined) out.addFrame(frame);
        else if (replacement !== null) out.add(replacement);
      }
    } catch (error) {
      this.onUpstreamProtocolError(error, out);
      return;
    }
    const bytes = out.take();
    if (bytes) this.relay('client', bytes);
    this.metrics.responseLatency.end(started);
  }

  private onUpstreamProtocolError(error: unknown, out: FrameBatch): void {
    this.log.warn({ code: isGatehouseError(error) ? error.code : undefined, err: (error as Error).message }, 'malformed upstream message');
    this.countUpstreamFailure('protocol');
    out.add(sidecarError('FATAL', PROTOCOL_VIOLATION, 'the upstream server sent a message the sidecar cannot relay safely'));
    this.closeReason = 'upstream error';
    this.closeClient(out.take()!);
    this.upstream?.socket.destroy();
  }

  /** undefined: pass the raw frame; null: drop it; a Buffer: send that instead (made in `out`'s memory). */
  private handleServerFrame(frame: ReceivedFrame, out: FrameBatch): Buffer | null | undefined {
    switch (frame.type) {
      case 0x44: // D DataRow
        return this.onDataRow(frame, out);
      case 0x43: // C CommandComplete
        return this.onCommandComplete(frame);
      case 0x54: // T RowDescription
        return this.onRowDescription(frame);
      case 0x45: // E ErrorResponse
        return this.onErrorResponse(frame);
      case 0x5a: // Z ReadyForQuery
        // Idle: no transaction, so no portal survives; a cursor DECLAREd later may reuse a name.
        if (this.portalLineage.size > 0 && frame.source[frame.start + 5] === 0x49) this.portalLineage.clear();
        this.pending.completeCycle();
        this.active = undefined;
        this.copyOut = undefined;
        this.adoptNewerIndex();
        return undefined;
      case 0x31: // 1 ParseComplete
      case 0x33: // 3 CloseComplete
        this.confirmHead();
        return undefined;
      case 0x32: // 2 BindComplete
        this.pending.shift();
        return undefined;
      case 0x6e: // n NoData
        return this.onNoData();
      case 0x49: // I EmptyQueryResponse
      case 0x73: // s PortalSuspended
        if (this.pending.head?.kind === 'execute') this.pending.shift();
        this.active = undefined;
        return undefined;
      case 0x48: // H CopyOutResponse
      case 0x57: // W CopyBothResponse
        return this.onCopyOutResponse(frame);
      case 0x64: // d CopyData
        return this.copyOut ? this.maskCopyData(frame) : undefined;
      case 0x63: // c CopyDone
        return this.copyOut?.withheld ? null : undefined;
      case 0x4e: // N NoticeResponse
        return this.state?.masker.active ? maskNoticeFrame(this.state.masker, frame, encodeNoticeResponse) : undefined;
      case 0x41: // A NotificationResponse
        return this.state?.masker.active ? maskNotificationFrame(this.state.masker, frame) : undefined;
      default:
        return undefined;
    }
  }

  /** ParseComplete or CloseComplete: the statement change it answers is now what the server holds. */
  private confirmHead(): void {
    const head = this.pending.shift();
    if (head?.kind === 'parse' || head?.kind === 'close') head.change?.confirm();
  }

  private onRowDescription(frame: ReceivedFrame): null | undefined {
    const head = this.pending.head;
    if (head?.kind === 'describe') {
      this.pending.shift();
      if (!head.layout) return undefined; // the client's own Describe: the answer is its
      head.layout.result = this.resultPlans.forFrame(this.state!.masker, frame, head.layout.lineage);
      return null;
    }
    // A result set starts (a simple Query).
    this.active = this.resultPlans.forFrame(this.state!.masker, frame, queryLineage(head));
    return undefined;
  }

  private onNoData(): null | undefined {
    const head = this.pending.shift();
    if (head?.kind !== 'describe' || !head.layout) return undefined;
    head.layout.result = PASS_THROUGH_RESULT;
    return null;
  }

  /**
   * Between request cycles (at ReadyForQuery): the column index a refresh of the resource's catalog
   * read since this session connected (views and functions created since, a policy's new column
   * globs), for the next statements' judgements and result sets; and a refresh started on a connection
   * of its own when the catalog's answer is older than its maximum age.
   */
  private adoptNewerIndex(): void {
    const state = this.state;
    if (state === undefined || !state.masker.active) return;
    const catalog = state.catalog;
    if (catalog.stale(Date.now())) catalog.refresh(() => this.connect(state, new Map()));
    const latest = catalog.latest;
    if (latest === undefined || latest === this.columnIndex) return;
    this.columnIndex = latest;
    this.indexCatalog = catalog;
    this.resultPlans.reset();
    this.judge.forget();
  }

  private planResult(masker: Masker, fields: readonly RowField[], lineage: OutputLineage | undefined): ActiveResult {
    const formats = formatsFor(fields, []);
    // A catalog read for other rules may lack the columns these name: table columns then get the statement's lineage too.
    const lineages = columnLineages(fields, lineage, this.state?.catalog !== this.indexCatalog);
    const plan = masker.planResultSet(fields.map((field, index) => this.resultColumn(field, lineages[index])));
    const cells = plan.columns.map((column, index) => masker.planCell(column, formats[index]!, fields[index]!.typeOid));
    const inspected = cells.flatMap((cell, index) => (cell ? [index] : []));
    return { fields, formats, plan, cells, inspected };
  }

  private resultColumn(field: RowField, derivedFrom: ColumnLineage | undefined): ResultColumn {
    const source = field.tableOid !== 0 ? this.columnIndex.get(columnKey(field.tableOid, field.columnAttr)) : undefined;
    // A view's column: what the view computes it from (the statement's own lineage is for computed
    // fields only); a computed field: what the view columns and functions it names come from.
    const lineage = source !== undefined ? sourceLineage(this.columnIndex, source) : derivedFrom !== undefined ? resolveLineage(this.columnIndex, derivedFrom) : undefined;
    return {
      name: field.name,
      typeOid: field.typeOid,
      ...(source ? { sourceName: source.column, table: source.table } : {}),
      ...(lineage ? { derivedFrom: lineage } : {}),
    };
  }

  private onDataRow(frame: ReceivedFrame, out: FrameBatch): Buffer | undefined {
    this.active ??= this.resultOfExecute();
    if (!this.active?.plan.inspect) return undefined;
    const masked = this.rowMasker.mask(this.active, frame, out);
    if (!masked) return undefined;
    this.metrics.maskedValues(masked.masked);
    return masked.frame;
  }

  /** The layout of an Execute's rows, from the sidecar's own Describe answered just before. */
  private resultOfExecute(): ActiveResult | undefined {
    const head = this.pending.head;
    if (head?.kind === 'execute') {
      if (!head.layout) return undefined; // no masking was in force when it was sent
      if (head.layout.result) return head.layout.result;
    } else if (!this.state?.masker.active) {
      return undefined;
    }
    // Rows nobody can say the columns of cannot be masked: end the session rather than pass them.
    throw new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: 'result rows arrived without a description to mask them by' });
  }

  private onCommandComplete(frame: ReceivedFrame): undefined {
    const head = this.pending.head;
    const statement = head?.kind === 'execute' || head?.kind === 'query' ? head : undefined;
    const timing = this.recording ? statement?.timing : undefined;
    // The tag is read only for the recording and to confirm a PREPARE; otherwise the frame just passes.
    const prepares = statement?.prepares;
    if (timing || prepares) {
      const { tag, rows } = this.commandTags.read(frame);
      if (timing) {
        this.recording?.write({ type: 'complete', at: eventTimestamp(), command: tag, rows, durationMs: elapsedMs(timing.started) });
      }
      if (prepares && tag === 'PREPARE') prepares.changes[prepares.completed++]?.confirm();
    }
    if (head?.kind === 'execute') this.pending.shift();
    else if (head?.kind === 'query' && head.outputs) head.outputs.next += 1;
    this.active = undefined;
    this.copyOut = undefined;
    return undefined;
  }

  private onErrorResponse(frame: ReceivedFrame): Buffer | undefined {
    const head = this.pending.head;
    const denial = head?.kind === 'denied' || head?.kind === 'query' ? head.denial : undefined;
    let replacement: Buffer | undefined;
    if (denial && frame.payload.includes(this.denialToken)) {
      replacement = denialErrorResponse(denial);
      this.recording?.write({ type: 'error', at: eventTimestamp(), code: denial.code ?? '42501', message: denial.note ?? denial.decision.message });
    } else {
      replacement = this.state?.masker.active ? maskNoticeFrame(this.state.masker, frame, encodeErrorResponse) : undefined;
      this.recordServerError(frame);
      // The server ending the session (shutdown, terminated backend): the client may close before the socket does.
      if (isFatal(frame)) this.countUpstreamFailure('fatal');
    }
    this.afterError(head);
    return replacement;
  }

  /** A simple Query or FunctionCall ends at its error; an extended message makes the server skip to Sync. */
  private afterError(head: PendingRequest | undefined): void {
    if (head?.kind === 'query') {
      if (head.prepares) undoUnfinishedPrepares(head.prepares);
    } else if (head) {
      this.pending.failExtended();
    }
    this.active = undefined;
    this.copyOut = undefined;
  }

  private recordServerError(frame: ReceivedFrame): void {
    if (!this.recording) return;
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'ErrorResponse') return;
    const notice = noticeFromFields(message.fields);
    const masker = this.state?.masker;
    const shown = (masker ? maskNotice(masker, notice) : undefined) ?? notice;
    this.recording.write({ type: 'error', at: eventTimestamp(), code: notice.code, message: shown.message });
  }

  private onCopyOutResponse(frame: ReceivedFrame): undefined {
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'CopyOutResponse' && message.kind !== 'CopyBothResponse') return undefined;
    const head = this.pending.head;
    const guarded = (head?.kind === 'query' || head?.kind === 'execute') && head.guardCopyOut === true;
    const plan = this.state?.masker ? anonymousPlan(this.state.masker) : undefined;
    // Binary COPY cannot be scanned reliably, so detectors cannot apply to it.
    const withhold = guarded ? COPY_OUT_REFUSED : plan && message.format === 1 ? BINARY_COPY_WITHHELD : undefined;
    this.copyOut = plan || withhold ? { plan, withhold, withheld: false } : undefined;
    return undefined;
  }

  private maskCopyData(frame: ReceivedFrame): Buffer | null | undefined {
    const copy = this.copyOut!;
    if (copy.withhold) {
      // The data is dropped and the COPY ends, for the client, in an error in place of the first row.
      if (copy.withheld) return null;
      copy.withheld = true;
      return sidecarError('ERROR', '42501', copy.withhold);
    }
    if (!copy.plan) return undefined;
    const masked = maskCopyDataFrame(this.state!.masker, copy.plan, frame);
    if (!masked) return undefined;
    this.metrics.maskedValues(masked.masked);
    return masked.frame;
  }

  // ── endings ────────────────────────────────────────────────────────────────────────────────

  /** Once per session, whichever sign of the failure comes first. */
  private countUpstreamFailure(kind: string): void {
    if (this.upstreamFailureCounted) return;
    this.upstreamFailureCounted = true;
    this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind });
  }

  private onUpstreamClosed(): void {
    if (this.phase === 'closed') return;
    this.countUpstreamFailure('closed');
    this.closeReason = 'upstream closed';
    this.closeClient(sidecarError('FATAL', ADMIN_SHUTDOWN, `the connection to ${this.labels.resource} was closed by the server`));
  }

  private onProtocolError(error: unknown): void {
    const detail = isGatehouseError(error) ? error.message : 'malformed message';
    this.deps.metrics.protocolErrors.inc({ resource: this.labels.resource, kind: isGatehouseError(error) ? error.code : 'unknown' });
    this.log.warn({ code: isGatehouseError(error) ? error.code : undefined }, 'client protocol error');
    this.fatal(PROTOCOL_VIOLATION, detail, 'protocol error');
  }

  private fatal(code: string, message: string, reason: string): void {
    this.closeReason = reason;
    this.closeClient(sidecarError('FATAL', code, message));
    this.upstream?.socket.destroy();
  }

  /**
   * Sends a last message and closes, as PostgreSQL does after a FATAL. Whatever the client still
   * sends is read and ignored (unread data would turn the close into a reset that can swallow the
   * message), and a client that never closes its side is cut off after a grace period.
   */
  private closeClient(lastMessage: Buffer): void {
    this.phase = 'closed';
    if (this.client.destroyed) return;
    this.client.end(lastMessage);
    this.client.resume();
    setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.startupTimer);
    this.held?.withdraw.abort();
    const wasReady = this.upstream !== undefined && this.clientKey !== undefined;
    this.phase = 'closed';
    if (this.clientKey) this.deps.cancels.unregister(this.clientKey);
    this.upstream?.socket.destroy();
    if (wasReady) this.deps.metrics.activeSessions.dec(this.labels);
    this.deps.metrics.sessions.inc({ ...this.labels, outcome: outcomeOf(reason) });
    this.recording?.write({ type: 'disconnect', at: eventTimestamp(), reason, durationMs: elapsedMs(this.started) });
    void this.recording?.end();
    this.log.info({ reason, durationMs: Math.round(elapsedMs(this.started)) }, 'session ended');
  }
}

/** What refuses a held statement: undefined when approved, else why, and who decided. */
function approvalDenial(decision: Decision, outcome: ApprovalDecision): Denial | undefined {
  if (outcome.outcome === 'approved') return undefined;
  const request = outcome.request ? ` (${outcome.request})` : '';
  const why = outcome.reason ? `: ${outcome.reason}` : '';
  const note = outcome.outcome === 'denied'
    ? `approval denied by ${describeDeciders(outcome.decidedBy)}${why}${request}`
    : `approval expired${why}${request}`;
  return { decision, note };
}

/** An ErrorResponse of severity FATAL or PANIC: the server ends the session after it. */
function isFatal(frame: ReceivedFrame): boolean {
  const message = decodeBackendMessage(frame);
  const severity = message.kind === 'ErrorResponse' ? message.fields.get('V') ?? message.fields.get('S') : undefined;
  return severity === 'FATAL' || severity === 'PANIC';
}

function outcomeOf(reason: string): string {
  if (reason === 'client closed' || reason === 'client terminated') return 'closed';
  if (reason === 'upstream error' || reason === 'upstream closed') return 'upstream-error';
  if (reason === 'protocol error' || reason === 'startup timeout') return 'protocol-error';
  if (reason === 'no access' || reason === 'replication refused' || reason === 'bad startup parameters') return 'rejected';
  return 'closed';
}

export function splitAddress(address: string): [string, number] {
  const match = /^\[?([^\]]+?)\]?:([0-9]+)$/.exec(address);
  if (!match) throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `address ${address} is not host:port` });
  return [match[1]!, Number(match[2])];
}

export type { PendingRequest, StatementRecord };

/**
 * The lineage of the result set a Query's RowDescription starts: its statement's, counted by the
 * CommandCompletes before it. A Query sent while masking was off has none recorded: unknown.
 */
function queryLineage(head: PendingRequest | undefined): OutputLineage | undefined {
  if (head?.kind !== 'query' || !head.outputs) return UNKNOWN_LINEAGE;
  const statement = head.outputs.statements[head.outputs.next];
  return statement === undefined ? UNKNOWN_LINEAGE : statement.outputs;
}

type QueryRequest = Extract<PendingRequest, { kind: 'query' }>;
