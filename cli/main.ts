#!/usr/bin/env node
// The `gatehouse` command line: finds the command named by the leading words and runs it.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatehouseError, isGatehouseError } from '../api/errors.js';
import { generateCommand } from './commands/generate.js';
import { policyTestCommand } from './commands/policy-test.js';
import { explainCommand } from './commands/explain.js';
import { validateCommand } from './commands/validate.js';
import { devCommand } from './commands/dev.js';
import type { CliCommand, CliIO } from './io.js';

export const COMMANDS: readonly CliCommand[] = [validateCommand, policyTestCommand, explainCommand, devCommand, generateCommand];

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((command) => command.usage.length));
  const lines = COMMANDS.map((command) => `  ${command.usage.padEnd(width)}  ${command.summary}`);
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

function findCommand(argv: readonly string[]): { command: CliCommand; rest: string[] } | undefined {
  const matches = COMMANDS.filter((command) => command.path.every((word, index) => argv[index] === word));
  const best = matches.sort((a, b) => b.path.length - a.path.length)[0];
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(helpText());
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
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
