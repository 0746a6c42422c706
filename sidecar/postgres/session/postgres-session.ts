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
import type { ClassifiedStatement, QualifiedName, SqlClassification } from '../../../api/sql/operations.js';
import type { ColumnPlan, ResultColumn } from '../../masking/masker.js';
import type { SidecarMetrics } from '../../metrics/sidecar-metrics.js';
import type { SessionRecording, SessionRecorder } from '../../recording/session-recorder.js';
import {
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeDataRow,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
} from '../protocol/backend-encoders.js';
import { decodeBackendMessage, type RowField } from '../protocol/backend-messages.js';
import { FrameSplitter, type Frame } from '../protocol/frame-splitter.js';
import {
  decodeFrontendMessage,
  type BindMessage,
  type FrontendMessage,
  type ParseMessage,
} from '../protocol/frontend-messages.js';
import { encodeDescribe } from '../protocol/frontend-encoders.js';
import { noticeFromFields, type PgNotice } from '../protocol/notice-fields.js';
import {
  decodeStartupPhaseMessage,
  encodeEncryptionRefused,
  type BackendKey,
  type StartupMessage,
} from '../protocol/startup-messages.js';
import { connectUpstream, type UpstreamConnection } from '../upstream/upstream-connection.js';
import { columnKey, type ColumnIndex } from './column-catalog.js';
import {
  denialErrorResponse,
  injectedParse,
  injectedQuery,
  newDenialToken,
  sidecarError,
  type Denial,
} from './denial.js';
import {
  PendingRequests,
  formatsFor,
  type ActiveResult,
  type PendingRequest,
  type PortalRecord,
  type StatementRecord,
  type StatementTiming,
} from './pending-requests.js';
import type { PostgresResourceHandle, PostgresResourceState } from './resource-state.js';
import { filterStartupParameters } from './startup-parameters.js';

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
}

const PROTOCOL_VIOLATION = '08P01';
const CANNOT_CONNECT = '08001';
const INVALID_AUTHORIZATION = '28000';
const FEATURE_NOT_SUPPORTED = '0A000';

const TEXT_DECODER_OPTIONS = 'utf8';

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function elapsedMs(since: bigint): number {
  return Number(nowNs() - since) / 1e6;
}

function rowsOf(tag: string): number {
  const last = tag.slice(tag.lastIndexOf(' ') + 1);
  return /^[0-9]+$/.test(last) ? Number(last) : 0;
}

function tablesOf(statement: ClassifiedStatement): QualifiedName[] {
  return statement.accesses.flatMap((access) => (access.relation ? [access.relation] : []));
}

function asClassification(statement: ClassifiedStatement): SqlClassification {
  return { operation: statement.operation, operations: [statement.operation], statements: [statement] };
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
  private readonly statements = new Map<string, StatementRecord>();
  private readonly portals = new Map<string, PortalRecord>();
  /** SQL-level PREPAREd statements, for classifying EXECUTE. */
  private readonly sqlPrepared = new Map<string, SqlClassification>();
  private discardUntilSync = false;
  private active: ActiveResult | undefined;
  private columnIndex: ColumnIndex = new Map();
  private copyOut: { readonly binary: boolean; readonly plan: ColumnPlan | undefined; withheld: boolean } | undefined;
  private phase: 'startup' | 'connecting' | 'ready' | 'closed' = 'startup';
  private readonly started = nowNs();
  private closeReason = 'client closed';
  private startupTimer: NodeJS.Timeout | undefined;
  private labels = { resource: '', identity: '' };

  constructor(
    private readonly client: Socket,
    private readonly deps: SessionDependencies,
  ) {
    this.labels = { resource: deps.resource.name, identity: deps.resource.current()?.identity ?? 'unknown' };
    this.log = deps.logger.child({ session: this.id, resource: deps.resource.name });
    this.clientFrames = new FrameSplitter({
      source: 'client',
      phase: 'startup',
      maxFrameBytes: deps.limits.maxClientMessageBytes,
    });
  }

  /** Starts handling the socket; resolves when the session has ended. */
  run(): Promise<void> {
    return new Promise((resolve) => {
      this.client.setNoDelay(true);
      this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
      this.client.on('error', (error) => this.log.debug({ err: error.message }, 'client socket error'));
      this.client.on('close', () => {
        this.end(this.closeReason);
        resolve();
      });
      this.startupTimer = setTimeout(() => {
        if (this.phase === 'startup') this.fatal(PROTOCOL_VIOLATION, 'no startup message in time', 'startup timeout');
      }, this.deps.limits.startupTimeoutMs);
    });
  }

  /** Ends the session from outside (drain, revoked access). */
  terminate(reason: string): void {
    if (this.phase === 'closed') return;
    const message = sidecarError('FATAL', '57P01', `session closed: ${reason}`);
    this.closeReason = reason;
    this.client.end(message);
    this.upstream?.socket.destroy();
  }

  // ── client → sidecar ───────────────────────────────────────────────────────────────────────

  private onClientData(chunk: Buffer): void {
    const started = nowNs();
    try {
      this.clientFrames.push(chunk);
      if (this.phase === 'startup') {
        this.readStartup();
        return;
      }
      if (this.phase !== 'ready') return; // connecting: frames wait in the splitter
      this.forwardClientFrames();
    } catch (error) {
      this.onProtocolError(error);
      return;
    }
    this.deps.metrics.addedLatency.observe({ resource: this.labels.resource, direction: 'request' }, elapsedMs(started) / 1000);
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
        void this.deps.cancels.cancel({ processId: message.processId, secretKey: message.secretKey }).finally(() => this.client.destroy());
        return;
      }
      this.phase = 'connecting';
      this.clientFrames.phase = 'regular';
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
    let parameters: Map<string, string>;
    try {
      parameters = filterStartupParameters(startup.parameters).forward;
    } catch (error) {
      return this.fatal(FEATURE_NOT_SUPPORTED, (error as Error).message, 'bad startup parameters');
    }
    try {
      this.upstream = await this.connect(state, parameters);
      this.columnIndex = await state.catalog.indexFor(this.upstream);
    } catch (error) {
      this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind: isGatehouseError(error) ? error.code : 'io' });
      const message = isGatehouseError(error) ? error.message : 'upstream connection failed';
      this.log.warn({ code: isGatehouseError(error) ? error.code : undefined }, 'upstream connection failed');
      this.upstream?.socket.destroy();
      return this.fatal(CANNOT_CONNECT, `cannot connect to ${state.resource.metadata.name}: ${message}`, 'upstream error');
    }
    if (this.client.destroyed) {
      this.upstream.socket.destroy();
      return;
    }
    this.attachUpstream(startup);
  }

  private accessRefusal(state: PostgresResourceState | undefined): string | undefined {
    if (!state) return `identity has no access to ${this.deps.resource.name}`;
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
      tls: {
        mode: state.resource.spec.tls?.mode ?? 'prefer',
        ...(state.caPem ? { caPem: state.caPem } : {}),
        ...(state.resource.spec.tls?.serverName ? { servername: state.resource.spec.tls.serverName } : {}),
      },
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
    if (realKey) this.deps.cancels.register(this.clientKey, () => this.deps.sendCancel(state, realKey));
    const greeting: Buffer[] = [encodeAuthenticationOk()];
    for (const [name, value] of upstream.parameters) greeting.push(encodeParameterStatus(name, value));
    greeting.push(encodeBackendKeyData(this.clientKey), encodeReadyForQuery('I'));
    this.client.write(Buffer.concat(greeting));
    this.openRecording(state, startup);
    this.deps.metrics.activeSessions.inc(this.labels);
    this.phase = 'ready';
    upstream.socket.setNoDelay(true);
    upstream.socket.on('data', (chunk: Buffer) => this.onServerData(chunk));
    upstream.socket.on('error', (error) => {
      this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind: 'io' });
      this.log.warn({ err: error.message }, 'upstream socket error');
    });
    upstream.socket.on('close', () => this.onUpstreamClosed());
    if (upstream.leftover.length > 0) this.onServerData(upstream.leftover);
    upstream.socket.resume();
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
    this.recording.write({ type: 'connect', at: new Date().toISOString(), client });
  }

  private forwardClientFrames(): void {
    const out: Buffer[] = [];
    for (let frame = this.clientFrames.next(); frame; frame = this.clientFrames.next()) {
      this.handleClientFrame(frame, out);
      if (this.phase !== 'ready') break;
    }
    if (out.length === 1) this.upstream!.socket.write(out[0]!);
    else if (out.length > 1) this.upstream!.socket.write(Buffer.concat(out));
  }

  private handleClientFrame(frame: Frame, out: Buffer[]): void {
    const type = String.fromCharCode(frame.type);
    // Fast path: messages that carry no statement pass as they are.
    switch (type) {
      case 'S':
        this.discardUntilSync = false;
        this.pending.push({ kind: 'sync' });
        out.push(frame.raw);
        return;
      case 'H':
        out.push(frame.raw);
        return;
      case 'd':
      case 'c':
      case 'f':
        out.push(frame.raw);
        return;
    }
    const message = decodeFrontendMessage(frame);
    if (this.discardUntilSync && message.kind !== 'Query' && message.kind !== 'Terminate') return;
    this.handleMessage(message, frame, out);
  }

  private handleMessage(message: FrontendMessage, frame: Frame, out: Buffer[]): void {
    switch (message.kind) {
      case 'Query':
        return this.onQuery(message.sql, frame, out);
      case 'Parse':
        return this.onParse(message, frame, out);
      case 'Bind':
        return this.onBind(message, frame, out);
      case 'Execute': {
        const portal = this.portals.get(message.portal);
        if (portal && !portal.fields && this.state?.masker.active) {
          // Rows would arrive without a layout to mask by: ask for it first, and keep the answer.
          out.push(encodeDescribe({ target: 'portal', name: message.portal }));
          this.pending.push({ kind: 'describe', portal, swallow: true });
        }
        this.pending.push({ kind: 'execute', portal, timing: { text: portal?.statement.text ?? '', started: nowNs() } });
        out.push(frame.raw);
        return;
      }
      case 'Describe': {
        const statement = message.target === 'statement' ? this.statements.get(message.name) : undefined;
        const portal = message.target === 'portal' ? this.portals.get(message.name) : undefined;
        this.pending.push({ kind: 'describe', ...(statement ? { statement } : {}), ...(portal ? { portal } : {}), swallow: false });
        out.push(frame.raw);
        return;
      }
      case 'Close':
        if (message.target === 'statement') this.statements.delete(message.name);
        else this.portals.delete(message.name);
        this.pending.push({ kind: 'close' });
        out.push(frame.raw);
        return;
      case 'FunctionCall':
        return this.onFunctionCall(message.functionOid, frame, out);
      case 'Terminate':
        this.closeReason = 'client terminated';
        out.push(frame.raw);
        this.phase = 'closed';
        return;
      default:
        throw new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: `unexpected ${message.kind} message` });
    }
  }

  // ── decisions ──────────────────────────────────────────────────────────────────────────────

  private decideText(text: string): { decision: Decision; classification?: SqlClassification; denial?: Denial } {
    const state = this.deps.resource.current();
    if (!state) return this.noAccess();
    this.state = state;
    const decision = state.policy.decideSql(text, this.deps.classifier, {
      preparedStatement: (name) => this.sqlPrepared.get(name),
    });
    const classification = decision.classification;
    const denial = this.denialFor(state, decision, classification);
    return { decision, ...(classification ? { classification } : {}), ...(denial ? { denial } : {}) };
  }

  private noAccess(): { decision: Decision; denial: Denial } {
    const decision: Decision = {
      effect: 'deny',
      reason: 'no-policy',
      matched: [],
      message: `identity no longer has access to ${this.deps.resource.name}`,
    };
    return { decision, denial: { decision } };
  }

  private denialFor(state: PostgresResourceState, decision: Decision, classification: SqlClassification | undefined): Denial | undefined {
    if (decision.effect === 'deny') return { decision };
    if (decision.effect === 'require-approval') {
      // Approvals arrive with the control plane; until a human can approve, a held statement is a deny.
      return { decision, note: `${decision.message || 'this statement needs approval'}; approvals are not available in this deployment, so it is denied` };
    }
    for (const statement of classification?.statements ?? []) {
      if (statement.command === 'COPY' && statement.operation === 'read' && state.copyOutHitsMaskedColumns(tablesOf(statement))) {
        return { decision, note: 'COPY ... TO STDOUT is not allowed on tables with masked columns (COPY output has no column names to mask by); use SELECT' };
      }
    }
    return undefined;
  }

  private count(decision: Decision, denial: Denial | undefined): void {
    const effect = denial ? 'deny' : decision.effect;
    this.deps.metrics.statements.inc({ ...this.labels, operation: decision.operation ?? 'unknown', decision: effect });
    if (denial) this.deps.metrics.blocked.inc({ ...this.labels, rule: decision.rule?.id ?? decision.reason });
  }

  private record(text: string, decision: Decision, denial: Denial | undefined, parameters?: (string | null)[]): void {
    this.recording?.write({
      type: 'statement',
      at: new Date().toISOString(),
      text,
      ...(parameters ? { parameters } : {}),
      operation: decision.operation ?? 'unknown',
      decision: denial ? 'deny' : decision.effect,
      ...(decision.rule ? { rule: decision.rule.id } : {}),
    });
  }

  private onQuery(sql: string, frame: Frame, out: Buffer[]): void {
    const { decision, classification, denial } = this.decideText(sql);
    this.count(decision, denial);
    this.record(sql, decision, denial);
    const timing: StatementTiming = { text: sql, started: nowNs() };
    if (denial) {
      this.log.info({ rule: decision.rule?.id, reason: decision.reason, operation: decision.operation }, 'statement denied');
      this.pending.push({ kind: 'query', timing, denial });
      out.push(injectedQuery(this.denialToken));
      return;
    }
    for (const statement of classification?.statements ?? []) {
      if (statement.prepares !== undefined) this.sqlPrepared.set(statement.prepares, asClassification(statement));
    }
    this.pending.push({ kind: 'query', timing });
    out.push(frame.raw);
  }

  private onParse(message: ParseMessage, frame: Frame, out: Buffer[]): void {
    const { decision, denial } = this.decideText(message.query);
    if (denial) {
      // Allowed statements are counted and recorded when executed (Bind); denied ones here.
      this.count(decision, denial);
      this.record(message.query, decision, denial);
      this.log.info({ rule: decision.rule?.id, reason: decision.reason, operation: decision.operation }, 'statement denied');
      this.denyExtended(denial, out);
      return;
    }
    this.statements.set(message.statement, { text: message.query });
    this.pending.push({ kind: 'parse' });
    out.push(frame.raw);
  }

  private onBind(message: BindMessage, frame: Frame, out: Buffer[]): void {
    const statement = this.statements.get(message.statement);
    if (statement) {
      // Decided again at Bind (a cache hit): a policy edit since the Parse applies to this execution.
      const { decision, denial } = this.decideText(statement.text);
      this.count(decision, denial);
      if (denial) {
        this.record(statement.text, decision, denial, this.parametersForRecord(message));
        this.denyExtended(denial, out);
        return;
      }
      if (this.recording) this.record(statement.text, decision, undefined, this.parametersForRecord(message));
    }
    this.portals.set(message.portal, {
      statement: statement ?? { text: '' },
      resultFormats: message.resultFormats,
    });
    this.pending.push({ kind: 'bind' });
    out.push(frame.raw);
  }

  private parametersForRecord(message: BindMessage): (string | null)[] {
    const masker = this.state?.masker;
    const plan = masker?.active ? masker.planColumn({ name: '' }) : undefined;
    return message.params.map((param, index) => {
      if (param === null) return null;
      const format = message.paramFormats.length === 1 ? message.paramFormats[0] : message.paramFormats[index];
      if (format === 1) return `\\x${param.toString('hex')}`;
      const text = param.toString(TEXT_DECODER_OPTIONS);
      return plan?.inspect ? masker!.maskValue(plan, text).value : text;
    });
  }

  private onFunctionCall(functionOid: number, frame: Frame, out: Buffer[]): void {
    const state = this.deps.resource.current();
    const decision = state
      ? state.policy.decide([{ operation: 'call', function: { name: `oid:${functionOid}` } }])
      : this.noAccess().decision;
    const denial = decision.effect === 'allow' ? undefined : { decision };
    this.count(decision, denial);
    this.record(`<FunctionCall oid ${functionOid}>`, decision, denial);
    if (denial) {
      this.pending.push({ kind: 'query', denial });
      out.push(injectedQuery(this.denialToken));
      return;
    }
    this.pending.push({ kind: 'query' });
    out.push(frame.raw);
  }

  private denyExtended(denial: Denial, out: Buffer[]): void {
    this.pending.push({ kind: 'denied', denial });
    out.push(injectedParse(this.denialToken));
    this.discardUntilSync = true;
  }

  // ── server → client ────────────────────────────────────────────────────────────────────────

  private onServerData(chunk: Buffer): void {
    const started = nowNs();
    const out: Buffer[] = [];
    try {
      this.serverFrames.push(chunk);
      for (let frame = this.serverFrames.next(); frame; frame = this.serverFrames.next()) {
        const replacement = this.handleServerFrame(frame);
        if (replacement === undefined) out.push(frame.raw);
        else if (replacement !== null) out.push(replacement);
      }
    } catch (error) {
      this.log.warn({ code: isGatehouseError(error) ? error.code : undefined }, 'malformed upstream message');
      this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind: 'protocol' });
      out.push(sidecarError('FATAL', PROTOCOL_VIOLATION, 'the upstream server sent a malformed message'));
      this.client.end(Buffer.concat(out));
      this.upstream?.socket.destroy();
      return;
    }
    if (out.length > 0) this.client.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    this.deps.metrics.addedLatency.observe({ resource: this.labels.resource, direction: 'response' }, elapsedMs(started) / 1000);
  }

  /** undefined: pass the raw frame; null: drop it; a Buffer: send that instead. */
  private handleServerFrame(frame: Frame): Buffer | null | undefined {
    switch (frame.type) {
      case 0x44: {
        // D DataRow: an Execute's rows come without a RowDescription; its portal says the layout.
        this.active ??= this.activeForExecute();
        return this.active?.plan.inspect ? this.maskRow(frame) : undefined;
      }
      case 0x43: // C CommandComplete
        return this.onCommandComplete(frame);
      case 0x54: // T RowDescription
        return this.onRowDescription(frame);
      case 0x45: // E ErrorResponse
        return this.onErrorResponse(frame);
      case 0x5a: // Z ReadyForQuery
        this.pending.completeCycle();
        this.active = undefined;
        this.copyOut = undefined;
        return undefined;
      case 0x31: // 1 ParseComplete
      case 0x32: // 2 BindComplete
      case 0x33: // 3 CloseComplete
        this.pending.shift();
        return undefined;
      case 0x6e: {
        // n NoData
        const head = this.pending.shift();
        return head?.kind === 'describe' && head.swallow ? null : undefined;
      }
      case 0x74: // t ParameterDescription
        return undefined;
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
        return this.state?.masker.active ? this.maskNotice(frame, encodeNoticeResponse) : undefined;
      default:
        return undefined;
    }
  }

  private onRowDescription(frame: Frame): Buffer | null | undefined {
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'RowDescription') return undefined;
    const head = this.pending.head;
    if (head?.kind === 'describe') {
      this.pending.shift();
      if (head.portal) head.portal.fields = message.fields;
      if (head.statement) head.statement.fields = message.fields;
      return head.swallow ? null : undefined;
    }
    // A result set starts (simple Query or an Execute whose portal was described).
    this.active = this.planResult(message.fields, formatsFor(message.fields, []));
    return undefined;
  }

  private planResult(fields: readonly RowField[], formats: readonly ('text' | 'binary')[]): ActiveResult {
    const masker = this.state!.masker;
    const columns: ResultColumn[] = fields.map((field) => this.resultColumn(field));
    return { fields, formats, plan: masker.active ? masker.planResultSet(columns) : { inspect: false, columns: [] } };
  }

  private resultColumn(field: RowField): ResultColumn {
    const source = field.tableOid !== 0 ? this.columnIndex.get(columnKey(field.tableOid, field.columnAttr)) : undefined;
    return {
      name: field.name,
      typeOid: field.typeOid,
      ...(source ? { sourceName: source.column, table: source.table } : {}),
    };
  }

  private activeForExecute(): ActiveResult | undefined {
    const head = this.pending.head;
    if (head?.kind !== 'execute' || !head.portal) return undefined;
    const { portal } = head;
    if (portal.fields) return this.planResult(portal.fields, formatsFor(portal.fields, []));
    if (portal.statement.fields) return this.planResult(portal.statement.fields, formatsFor(portal.statement.fields, portal.resultFormats));
    return undefined;
  }

  private maskRow(frame: Frame): Buffer | undefined {
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'DataRow') return undefined;
    const { plan, formats, fields } = this.active!;
    const masker = this.state!.masker;
    let masked = 0;
    const columns = message.columns.map((cell, index) => {
      const column = plan.columns[index];
      if (!column?.inspect) return cell;
      const result = masker.maskCell(column, cell, formats[index] ?? 'text', fields[index]?.typeOid ?? 0);
      masked += result.masked;
      return result.cell;
    });
    if (masked === 0) return undefined;
    this.deps.metrics.maskedValues.inc({ ...this.labels, strategy: 'any' }, masked);
    return encodeDataRow(columns);
  }

  private onCommandComplete(frame: Frame): undefined {
    const head = this.pending.head;
    const message = decodeBackendMessage(frame);
    const tag = message.kind === 'CommandComplete' ? message.tag : '';
    const timing = head?.kind === 'execute' || head?.kind === 'query' ? head.timing : undefined;
    if (timing) {
      this.recording?.write({ type: 'complete', at: new Date().toISOString(), command: tag, rows: rowsOf(tag), durationMs: elapsedMs(timing.started) });
    }
    if (head?.kind === 'execute') this.pending.shift();
    this.active = undefined;
    this.copyOut = undefined;
    return undefined;
  }

  private onErrorResponse(frame: Frame): Buffer | undefined {
    const head = this.pending.head;
    const denial = head?.kind === 'denied' || head?.kind === 'query' ? head.denial : undefined;
    let replacement: Buffer | undefined;
    if (denial && frame.payload.includes(this.denialToken)) {
      replacement = denialErrorResponse(denial);
      this.recording?.write({ type: 'error', at: new Date().toISOString(), code: '42501', message: denial.note ?? denial.decision.message });
    } else {
      replacement = this.state?.masker.active ? this.maskNotice(frame, encodeErrorResponse) : undefined;
      this.recordServerError(frame);
    }
    if (head && head.kind !== 'query') this.pending.dropUntilSync();
    this.active = undefined;
    if (this.copyOut) this.copyOut = undefined;
    return replacement;
  }

  private recordServerError(frame: Frame): void {
    if (!this.recording) return;
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'ErrorResponse') return;
    const notice = noticeFromFields(message.fields);
    const masker = this.state?.masker;
    const plan = masker?.active ? masker.planColumn({ name: '' }) : undefined;
    const text = plan?.inspect ? masker!.maskValue(plan, notice.message).value : notice.message;
    this.recording.write({ type: 'error', at: new Date().toISOString(), code: notice.code, message: text });
  }

  /** Server errors and notices may quote values (a duplicate key's card number): mask their text. */
  private maskNotice(frame: Frame, encode: (notice: PgNotice) => Buffer): Buffer | undefined {
    const message = decodeBackendMessage(frame);
    if (message.kind !== 'ErrorResponse' && message.kind !== 'NoticeResponse') return undefined;
    const masker = this.state!.masker;
    const plan = masker.planColumn({ name: '' });
    if (!plan.inspect) return undefined;
    const notice = noticeFromFields(message.fields) as Record<string, string | undefined>;
    let changed = 0;
    for (const key of ['message', 'detail', 'hint', 'where', 'internalQuery']) {
      const value = notice[key];
      if (value === undefined) continue;
      const result = masker.maskValue(plan, value);
      if (result.masked > 0) {
        notice[key] = result.value;
        changed += result.masked;
      }
    }
    return changed > 0 ? encode(notice as PgNotice) : undefined;
  }

  private onCopyOutResponse(frame: Frame): undefined {
    const message = decodeBackendMessage(frame);
    const masker = this.state?.masker;
    if ((message.kind === 'CopyOutResponse' || message.kind === 'CopyBothResponse') && masker?.active) {
      const plan = masker.planColumn({ name: '' });
      this.copyOut = { binary: message.format === 1, plan: plan.inspect ? plan : undefined, withheld: false };
    }
    return undefined;
  }

  private maskCopyData(frame: Frame): Buffer | null | undefined {
    const copy = this.copyOut!;
    if (!copy.plan) return undefined;
    if (copy.binary) {
      // Binary COPY cannot be scanned reliably: its data is withheld and the COPY ends in an error.
      if (!copy.withheld) {
        copy.withheld = true;
        return sidecarError('ERROR', '42501', 'binary COPY output cannot be masked; use FORMAT text or csv');
      }
      return null;
    }
    const text = frame.payload.toString('latin1');
    const result = this.state!.masker.maskValue(copy.plan, text);
    if (result.masked === 0) return undefined;
    this.deps.metrics.maskedValues.inc({ ...this.labels, strategy: 'any' }, result.masked);
    const data = Buffer.from(result.value, 'latin1');
    const header = Buffer.allocUnsafe(5);
    header[0] = 0x64;
    header.writeInt32BE(data.length + 4, 1);
    return Buffer.concat([header, data]);
  }

  // ── endings ────────────────────────────────────────────────────────────────────────────────

  private onUpstreamClosed(): void {
    if (this.phase === 'closed') return;
    this.deps.metrics.upstreamErrors.inc({ resource: this.labels.resource, kind: 'closed' });
    this.closeReason = 'upstream closed';
    this.client.end(sidecarError('FATAL', '57P01', `the connection to ${this.labels.resource} was closed by the server`));
  }

  private onProtocolError(error: unknown): void {
    const detail = isGatehouseError(error) ? error.message : 'malformed message';
    this.deps.metrics.protocolErrors.inc({ resource: this.labels.resource, kind: isGatehouseError(error) ? error.code : 'unknown' });
    this.log.warn({ code: isGatehouseError(error) ? error.code : undefined }, 'client protocol error');
    this.fatal(PROTOCOL_VIOLATION, detail, 'protocol error');
  }

  private fatal(code: string, message: string, reason: string): void {
    this.closeReason = reason;
    if (!this.client.destroyed) this.client.end(sidecarError('FATAL', code, message));
    this.upstream?.socket.destroy();
    this.phase = 'closed';
  }

  private ended = false;

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.startupTimer);
    const wasReady = this.upstream !== undefined && this.clientKey !== undefined;
    this.phase = 'closed';
    if (this.clientKey) this.deps.cancels.unregister(this.clientKey);
    this.upstream?.socket.destroy();
    if (wasReady) this.deps.metrics.activeSessions.dec(this.labels);
    this.deps.metrics.sessions.inc({ ...this.labels, outcome: outcomeOf(reason) });
    this.recording?.write({ type: 'disconnect', at: new Date().toISOString(), reason, durationMs: elapsedMs(this.started) });
    void this.recording?.end();
    this.log.info({ reason, durationMs: Math.round(elapsedMs(this.started)) }, 'session ended');
  }
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

export type { PendingRequest };
