// Loading a config folder for commands that need a sound one (`policy test`, `explain`): the loader's
// errors stop the command, its warnings are shown and let it go on, and both read `file:line`.
import { resolve } from 'node:path';
import { loadConfigDir, type ConfigProblem, type GatehouseConfig } from '../api/manifests/config.js';
import type { CliIO } from './io.js';

export function isErrorProblem(problem: ConfigProblem): boolean {
  return (problem.severity ?? 'error') === 'error';
}

/** `FILE:LINE  Kind/namespace/name  field.path  message  [GH_ERR_CODE]`, warnings marked: one shape for every command. */
export function formatProblem(problem: ConfigProblem): string {
  const object = problem.kind === undefined ? '-' : `${problem.kind}/${problem.namespace ?? '-'}/${problem.name ?? '-'}`;
  const message = isErrorProblem(problem) ? problem.message : `warning: ${problem.message}`;
  return `${problem.file}:${problem.line}  ${object}  ${problem.path || '-'}  ${message}  [${problem.code}]`;
}

export interface LoadedConfig {
  readonly config: GatehouseConfig;
  /** Loader problems that make the folder unusable; the caller stops when there are any. */
  readonly errors: readonly ConfigProblem[];
}

/** Loads `dir` (relative to the command's cwd), printing every loader problem to stderr. */
export async function loadConfigFolder(dir: string, io: CliIO): Promise<LoadedConfig> {
  const config = await loadConfigDir(resolve(io.cwd, dir));
  for (const problem of config.problems) io.stderr(`${formatProblem(problem)}\n`);
  const errors = config.problems.filter(isErrorProblem);
  if (errors.length > 0) {
    io.stderr(`${errors.length} problem(s) in the config folder ${dir}; fix them first.\n`);
  }
  return { config, errors };
}
