// One pod's sidecar as a local process: spawns it with the env and args the pod spec gives it,
// captures its output to a per-pod log, runs its probes, restarts it when it dies (native sidecars
// have restartPolicy Always) and stops it with SIGTERM, then SIGKILL after the grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import type { Logger } from '../../api/logging/logger.js';
import type { HttpProbe, SidecarSpec } from './sidecar-spec.js';

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Termination extends ProcessExit {
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

/** What the pod status reports; the kubelet writes it whenever `onChange` fires. */
export interface SidecarState {
  readonly running: boolean;
  readonly started: boolean;
  readonly ready: boolean;
  readonly restartCount: number;
  readonly startedAt?: Date;
  readonly lastTermination?: Termination;
  /** Why the container is waiting to be restarted (CrashLoopBackOff) or failed its probe. */
  readonly waitingReason?: string;
}

export interface SidecarProcessOptions {
  readonly spec: SidecarSpec;
  /** argv[0..] that stands in for the image; the container args follow it. */
  readonly commandPrefix: readonly string[];
  readonly cwd: string;
  readonly logFile: string;
  readonly logger: Logger;
  readonly onChange: (state: SidecarState) => void;
  readonly probeIntervalMs: number;
  readonly restartBackoffMs: number;
  /** Caps the pod's terminationGracePeriodSeconds so tests do not wait 30 s for a stuck process. */
  readonly maxGraceMs: number;
}

const MAX_BUFFERED_LOG_CHARS = 4 * 1024 * 1024;
const MAX_BACKOFF_MS = 10_000;

export class SidecarProcess {
  private child?: ChildProcess;
  private childExit?: Promise<ProcessExit>;
  private state: SidecarState = { running: false, started: false, ready: false, restartCount: 0 };
  private logText = '';
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;
  private probeTimer?: NodeJS.Timeout;
  private generation = 0;

  constructor(private readonly options: SidecarProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get current(): SidecarState {
    return this.state;
  }

  /** Settles when the current process exits (immediately if none runs). */
  get exited(): Promise<ProcessExit> {
    return this.childExit ?? Promise.resolve({ code: null, signal: null });
  }

  logs(): string {
    return this.logText;
  }

  start(): void {
    if (this.stopping) return;
    const { spec, commandPrefix, cwd } = this.options;
    const [file, ...prefixArgs] = commandPrefix;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...Object.fromEntries(spec.env) };
    const child = spawn(file, [...prefixArgs, ...spec.args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const generation = ++this.generation;
    const startedAt = new Date();
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.appendLog(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.appendLog(chunk));
    this.childExit = new Promise((resolve) => {
      child.once('error', (error) => {
        this.appendLog(Buffer.from(`stand-in kubelet: cannot start ${file}: ${error.message}\n`));
        resolve({ code: 127, signal: null });
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    void this.childExit.then((exit) => this.onExit(generation, startedAt, exit));
    this.update({ running: true, started: false, ready: false, startedAt, waitingReason: undefined });
    this.options.logger.info({ pid: child.pid, args: spec.args }, 'sidecar process started');
    this.probeStartup(generation, startedAt.getTime());
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  async stop(): Promise<ProcessExit> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.probeTimer);
    const child = this.child;
    const exit = this.exited;
    if (!child || child.exitCode !== null || child.signalCode !== null) return exit;
    child.kill('SIGTERM');
    const graceMs = Math.min(this.options.spec.terminationGracePeriodSeconds * 1000, this.options.maxGraceMs);
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const result = await exit;
    clearTimeout(killer);
    return result;
  }

  private appendLog(chunk: Buffer): void {
    const text = chunk.toString('utf8');
    // Keep the tail in memory for tests; the file keeps everything.
    this.logText = (this.logText + text).slice(-MAX_BUFFERED_LOG_CHARS);
    appendFileSync(this.options.logFile, text);
  }

  private update(patch: Partial<SidecarState>): void {
    this.state = { ...this.state, ...patch };
    this.options.onChange(this.state);
  }

  private onExit(generation: number, startedAt: Date, exit: ProcessExit): void {
    if (generation !== this.generation) return;
    clearTimeout(this.probeTimer);
    const lastTermination = { ...exit, startedAt, finishedAt: new Date() };
    this.options.logger.info({ code: exit.code, signal: exit.signal, stopping: this.stopping }, 'sidecar process exited');
    if (this.stopping) {
      this.update({ running: false, started: false, ready: false, lastTermination });
      return;
    }
    // Native sidecars restart whatever the pod's restartPolicy, with a doubling back-off.
    const backoffMs = Math.min(this.options.restartBackoffMs * 2 ** Math.min(this.state.restartCount, 10), MAX_BACKOFF_MS);
    this.update({ running: false, started: false, ready: false, lastTermination, restartCount: this.state.restartCount + 1, waitingReason: 'CrashLoopBackOff' });
    this.restartTimer = setTimeout(() => this.start(), backoffMs);
  }

  private probeStartup(generation: number, startedAtMs: number): void {
    const probe = this.options.spec.startupProbe;
    if (!probe) {
      this.markStarted(generation);
      return;
    }
    const budgetMs = probe.periodMs * probe.failureThreshold;
    const attempt = async () => {
      if (generation !== this.generation || this.stopping) return;
      if (await probeOnce(probe)) {
        this.markStarted(generation);
      } else if (Date.now() - startedAtMs > budgetMs) {
        // The kubelet kills a container whose startup probe keeps failing; the exit handler restarts it.
        this.appendLog(Buffer.from(`stand-in kubelet: startup probe ${probe.path} failed for ${budgetMs} ms; killing\n`));
        this.child?.kill('SIGKILL');
      } else {
        this.probeTimer = setTimeout(() => void attempt(), this.options.probeIntervalMs);
      }
    };
    void attempt();
  }

  private markStarted(generation: number): void {
    if (generation !== this.generation) return;
    const readiness = this.options.spec.readinessProbe;
    this.update({ started: true, ready: readiness === undefined });
    if (readiness) this.probeReadiness(generation, readiness);
  }

  private probeReadiness(generation: number, probe: HttpProbe): void {
    const attempt = async () => {
      if (generation !== this.generation || this.stopping) return;
      const ready = await probeOnce(probe);
      if (generation !== this.generation || this.stopping) return;
      if (ready !== this.state.ready) this.update({ ready });
      this.probeTimer = setTimeout(() => void attempt(), this.options.probeIntervalMs);
    };
    void attempt();
  }
}

/** An httpGet probe: success is a 2xx or 3xx answer within the timeout, as in the kubelet. */
export function probeOnce(probe: HttpProbe): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port: probe.port, path: probe.path, timeout: probe.timeoutMs }, (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      resolve(status >= 200 && status < 400);
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(false));
  });
}
