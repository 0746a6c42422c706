// Starts the benchmark's child processes (proxies and pgbench) and makes sure none outlives the run:
// each is tracked until it exits, stopAll() ends what is left, killAllNow() is the synchronous last
// resort for process 'exit', and once closed (Ctrl-C) the group refuses to start anything new.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError } from './bench-errors.js';

/** Enough of a process's output to explain why it failed, without growing with a long run. */
const OUTPUT_TAIL_CHARS = 8_000;
const STOP_GRACE_MS = 5_000;

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves with a description of how it ended ("exit code 0", "signal SIGTERM"). */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  /** The full stdout, when spawned with collectStdout. */
  stdout(): string;
  /** The tail of stdout and stderr interleaved, for error messages. */
  outputTail(): string;
  /** SIGTERM, then SIGKILL if it has not exited after a grace period. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Keep all of stdout (pgbench's report); otherwise only a tail is kept. */
  readonly collectStdout?: boolean;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code ?? 'unknown'}`;
}

export class ChildProcessGroup {
  /** Each running child with the function that stops it. */
  private readonly running = new Map<ChildProcess, () => Promise<void>>();
  private closedBy: string | undefined;

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): ManagedProcess {
    if (this.closedBy) throw new BenchError('GH_BENCH_INTERRUPTED', { signal: this.closedBy });
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    let stdout = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.collectStdout) stdout += chunk.toString('utf8');
      keep(chunk);
    });
    child.stderr.on('data', keep);
    let done = false;
    const exited = new Promise<string>((resolve) => {
      child.once('error', (error) => {
        done = true;
        this.running.delete(child);
        resolve(`spawn error (${error.message})`);
      });
      child.once('close', (code, signal) => {
        done = true;
        this.running.delete(child);
        resolve(describeExit(code, signal));
      });
    });
    const stop = () => stopChild(child, exited, () => done);
    this.running.set(child, stop);
    return {
      name,
      pid: child.pid ?? -1,
      exited,
      hasExited: () => done,
      stdout: () => stdout,
      outputTail: () => tail.trimEnd(),
      stop,
    };
  }

  /** Refuses new processes from now on and stops the running ones. */
  async close(reason: string): Promise<void> {
    this.closedBy ??= reason;
    await this.stopAll();
  }

  private async stopAll(): Promise<void> {
    await Promise.all([...this.running.values()].map((stop) => stop()));
  }

  /** Synchronous, for process.on('exit'), where nothing asynchronous runs any more. */
  killAllNow(): void {
    for (const child of this.running.keys()) child.kill('SIGKILL');
  }
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>, hasExited: () => boolean): Promise<void> {
  if (hasExited()) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until the process listens on host:port, failing early (with its output) if it exits. */
export async function waitForListening(proc: ManagedProcess, host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      throw new BenchError('GH_BENCH_PROCESS_EXITED', { name: proc.name, status: await proc.exited, output: proc.outputTail() });
    }
    if (await canConnect(host, port)) return;
    await sleep(50);
  }
  throw new BenchError('GH_BENCH_PROCESS_NOT_READY', { name: proc.name, address: `${host}:${port}`, seconds: timeoutMs / 1000 });
}
