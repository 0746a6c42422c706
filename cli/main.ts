#!/usr/bin/env node
// The `gatehouse` command line: finds the command named by the leading words and runs it.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatehouseError, isGatehouseError } from '../api/errors.js';
import type { CliCommand, CliIO } from './io.js';

/**
 * Every command, by the words that name it, loaded only when run: a sidecar process must not pay
 * for the operator's Kubernetes client (about 40 MB of RSS), nor the operator for the PostgreSQL
 * proxy. `cli/main.test.ts` checks each entry's words against the command it loads.
 */
interface CommandEntry {
  readonly path: readonly string[];
  load(): Promise<CliCommand>;
}

export const COMMAND_ENTRIES: readonly CommandEntry[] = [
  { path: ['validate'], load: async () => (await import('./commands/validate.js')).validateCommand },
  { path: ['policy', 'test'], load: async () => (await import('./commands/policy-test.js')).policyTestCommand },
  { path: ['explain'], load: async () => (await import('./commands/explain.js')).explainCommand },
  { path: ['dev'], load: async () => (await import('./commands/dev.js')).devCommand },
  { path: ['sidecar'], load: async () => (await import('./commands/sidecar.js')).sidecarCommand },
  { path: ['operator'], load: async () => (await import('./commands/operator.js')).operatorCommand },
  { path: ['sessions'], load: async () => (await import('./commands/sessions.js')).sessionsCommand },
  { path: ['requests'], load: async () => (await import('./commands/requests.js')).requestsCommand },
  { path: ['approve'], load: async () => (await import('./commands/approve.js')).approveCommand },
  { path: ['deny'], load: async () => (await import('./commands/deny.js')).denyCommand },
  { path: ['generate', 'crds'], load: async () => (await import('./commands/generate.js')).generateCommand },
];

/** Loads every command (for the help text, which lists them all), one after another. */
export async function loadCommands(): Promise<CliCommand[]> {
  const commands: CliCommand[] = [];
  for (const entry of COMMAND_ENTRIES) commands.push(await entry.load());
  return commands;
}

export async function helpText(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...commands.map((command) => command.usage.length));
  const lines = commands.map((command) => `  ${command.usage.padEnd(width)}  ${command.summary}`);
  return [
    'gatehouse — identity-aware enforcement for non-human access to databases, APIs, clusters and hosts',
    '',
    'Usage:',
    ...lines,
    '',
    'Run `gatehouse COMMAND --help` for a command. Docs: README.md and docs/.',
    '',
  ].join('\n');
}

async function findCommand(argv: readonly string[]): Promise<{ command: CliCommand; rest: string[] } | undefined> {
  const matches = COMMAND_ENTRIES.filter((entry) => entry.path.every((word, index) => argv[index] === word));
  const best = [...matches].sort((a, b) => b.path.length - a.path.length)[0];
  return best ? { command: await best.load(), rest: argv.slice(best.path.length) } : undefined;
}

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(await helpText());
    return argv.length === 0 ? 2 : 0;
  }
  const found = await findCommand(argv);
  if (!found) {
    io.stderr(`${new GatehouseError('GH_ERR_USAGE', { detail: `Unknown command "${argv.join(' ')}"` }).message}\n`);
    return 2;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    io.stdout(`Usage: ${found.command.usage}\n\n${found.command.summary}\n`);
    return 0;
  }
  try {
    return await found.command.run(found.rest, io);
  } catch (error) {
    io.stderr(`${describeError(error)}\n`);
    return isGatehouseError(error) && error.code !== 'GH_ERR_USAGE' ? 1 : 2;
  }
}

function describeError(error: unknown): string {
  if (isGatehouseError(error)) return `error ${error.code}: ${error.message}`;
  // parseArgs raises TypeErrors with a code for unknown or malformed options: usage mistakes.
  // Checked by shape, not instanceof: errors can come from another realm (jest's VM modules).
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  if (String(code).startsWith('ERR_PARSE_ARGS')) {
    return `error GH_ERR_USAGE: ${String(message)}. Run \`gatehouse --help\` for usage.`;
  }
  return `error: ${typeof message === 'string' ? message : String(error)}`;
}

async function main(): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const io: CliIO = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    signal: controller.signal,
  };
  process.exitCode = await runCli(process.argv.slice(2), io);
}

function isEntryPoint(): boolean {
  const invokedAs = process.argv[1];
  if (!invokedAs) return false;
  try {
    return realpathSync(invokedAs) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Run only when executed as the program (also through the npm bin symlink), not when imported by tests.
if (isEntryPoint()) void main();
