// What a CLI command gets from the process: arguments, output streams and the working folder.
// Commands never touch process.* directly, so tests run them in-process with captured output.

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly cwd: string;
  /** Aborted on SIGINT/SIGTERM for long-running commands. */
  readonly signal: AbortSignal;
}

export interface CliCommand {
  /** Words after `gatehouse`, e.g. ['policy', 'test']. */
  readonly path: readonly string[];
  readonly summary: string;
  readonly usage: string;
  run(args: string[], io: CliIO): Promise<number>;
}

/** Captures a command's output; `abort()` stands in for SIGTERM so long-running commands can be stopped. */
export function bufferedIO(cwd = process.cwd()): CliIO & { out: () => string; err: () => string; abort: () => void } {
  let out = '';
  let err = '';
  const controller = new AbortController();
  return {
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      err += text;
    },
    cwd,
    signal: controller.signal,
    out: () => out,
    err: () => err,
    abort: () => controller.abort(),
  };
}
