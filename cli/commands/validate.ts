// `gatehouse validate DIR [--json]`: the CI step over a GitOps folder. Loads every manifest, runs the
// validator (api/manifests/validate.ts) and prints one line per problem; exit 1 when any is an
// error, 0 when there are only warnings or none.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import { isWarning, loadConfigDir, type ConfigProblem, type GatehouseConfig } from '../../api/manifests/config.js';
import { validateConfig } from '../../api/manifests/validate.js';
import { formatProblem } from '../config-folder.js';
import type { CliCommand } from '../io.js';

export interface ValidationSummary {
  readonly objects: number;
  readonly files: number;
  readonly errors: number;
  readonly warnings: number;
}

/** A problem as printed: `file` as the user can open it from where they ran the command. */
interface ShownProblem extends ConfigProblem {
  readonly severity: 'error' | 'warning';
}

export const validateCommand: CliCommand = {
  path: ['validate'],
  summary: 'check a folder of manifests for everything a cluster would reject or misapply (CI-friendly)',
  usage: 'gatehouse validate DIR [--json]',
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      options: { json: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    const dir = onlyFolder(positionals);
    const config = await loadConfigDir(resolve(io.cwd, dir));
    const problems = validateConfig(config).map((problem) => show(problem, dir));
    const summary = summarize(config, problems);
    if (values.json) io.stdout(`${JSON.stringify({ ...summary, problems }, null, 2)}\n`);
    else io.stdout([...problems.map(formatProblem), formatSummary(summary)].join('\n') + '\n');
    if (summary.files === 0) io.stderr(`note: no *.yaml or *.yml files under ${dir}\n`);
    return summary.errors > 0 ? 1 : 0;
  },
};

function onlyFolder(positionals: readonly string[]): string {
  if (positionals.length === 1) return positionals[0]!;
  const detail =
    positionals.length === 0
      ? 'validate needs the folder of manifests to check: gatehouse validate DIR'
      : `validate checks one folder, got ${positionals.length}: ${positionals.join(' ')}`;
  throw new GatehouseError('GH_ERR_USAGE', { detail });
}

function show(problem: ConfigProblem, dir: string): ShownProblem {
  return { ...problem, file: join(dir, problem.file), severity: isWarning(problem) ? 'warning' : 'error' };
}

export function summarize(config: GatehouseConfig, problems: readonly ConfigProblem[]): ValidationSummary {
  const warnings = problems.filter(isWarning).length;
  return {
    objects: config.objectCount ?? 0,
    files: config.files?.length ?? 0,
    errors: problems.length - warnings,
    warnings,
  };
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function formatSummary(summary: ValidationSummary): string {
  return `validated ${plural(summary.objects, 'object')} in ${plural(summary.files, 'file')}: ${plural(summary.errors, 'error')}, ${plural(summary.warnings, 'warning')}`;
}
