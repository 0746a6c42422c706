// A long-lived psql process for tests that need a *live* session: statements are written to its
// standard input one at a time, and each answer is read up to a marker echoed to stdout and stderr
// after it, so a test sees exactly what psql printed for that statement, errors included.
// psql runs non-interactively: when the server ends the session it exits with code 2.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface PsqlAnswer {
  readonly stdout: string;
  readonly stderr: string;
  /** Set when psql exited while answering (the session was closed). */
  readonly exitCode?: number;
}

export interface InteractivePsqlOptions {
  readonly host?: string;
  readonly port: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
}

export class InteractivePsql {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private exitCode: number | undefined;
  private markers = 0;
  private wake: (() => void) | undefined;
  readonly exited: Promise<number>;

  constructor(options: InteractivePsqlOptions) {
    // VERBOSITY verbose puts the SQLSTATE in every error line ("ERROR:  42501: ...").
    const args = ['-X', '-q', '-t', '-A', '-v', 'VERBOSITY=verbose', '-h', options.host ?? '127.0.0.1', '-p', String(options.port),
      '-U', options.user ?? 'whoever', '-d', options.database ?? 'whatever'];
    const env = { ...process.env, PGPASSWORD: options.password ?? 'the-app-does-not-know-it', PGCONNECT_TIMEOUT: '5' };
    this.child = spawn('psql', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => this.append('stdout', chunk));
    this.child.stderr.on('data', (chunk: Buffer) => this.append('stderr', chunk));
    this.child.stdin.on('error', () => undefined); // writing to a psql that already exited
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code) => {
        this.exitCode = code ?? 1;
        this.wake?.();
        resolve(this.exitCode);
      });
    });
  }

  /** Runs `sql` (one or more statements, `;`-terminated) and returns what psql printed for it. */
  async run(sql: string, timeoutMs = 5_000): Promise<PsqlAnswer> {
    const marker = `__gatehouse_test_done_${++this.markers}__`;
    const outFrom = this.stdout.length;
    const errFrom = this.stderr.length;
    if (this.exitCode === undefined) this.child.stdin.write(`${sql}\n\\echo ${marker}\n\\warn ${marker}\n`);
    const deadline = Date.now() + timeoutMs;
    const done = () => this.exitCode !== undefined || (this.stdout.includes(marker, outFrom) && this.stderr.includes(marker, errFrom));
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`psql did not answer within ${timeoutMs} ms: ${sql}\nstderr: ${this.stderr.slice(errFrom)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const strip = (text: string) => text.split(marker).join('').trim();
    return {
      stdout: strip(this.stdout.slice(outFrom)),
      stderr: strip(this.stderr.slice(errFrom)),
      ...(this.exitCode !== undefined ? { exitCode: this.exitCode } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.exitCode === undefined) this.child.stdin.end('\\q\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await this.exited;
    clearTimeout(timer);
  }

  private append(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (stream === 'stdout') this.stdout += chunk.toString('utf8');
    else this.stderr += chunk.toString('utf8');
    this.wake?.();
  }
}

export interface PsqlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One psql run of `sql` on a new connection (an app that knows neither the real user nor the password). */
export function psqlOnce(port: number, sql: string): Promise<PsqlResult> {
  return new Promise((resolve, reject) => {
    const args = ['-X', '-q', '-t', '-A', '-v', 'VERBOSITY=verbose', '-h', '127.0.0.1', '-p', String(port), '-U', 'whoever', '-d', 'whatever', '-c', sql];
    const child = spawn('psql', args, { env: { ...process.env, PGPASSWORD: 'the-app-does-not-know-it', PGCONNECT_TIMEOUT: '5' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: stdout.trim(), stderr: stderr.trim() }));
  });
}
