// `gatehouse policy test DIR [--json]`: runs the PolicyTest cases of a config folder against its
// policies with the real SQL classifier, like `kyverno test` or `opa test`; exit 1 on any failure.
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import {
  describeInput,
  runPolicyTests,
  type PolicyTestExpectation,
  type PolicyTestOutcome,
  type PolicyTestReport,
  type PolicyTestResult,
} from '../../api/policy/policy-test.js';
import { loadSqlParser, SqlClassifier } from '../../api/sql/classify.js';
import { formatProblem, loadConfigFolder } from '../config-folder.js';
import type { CliCommand, CliIO } from '../io.js';

export function formatExpected(expected: PolicyTestExpectation): string {
  const rule = expected.rule === undefined ? '' : ` ${expected.rule}`;
  const operation = expected.operation === undefined ? '' : ` (${expected.operation})`;
  return `${expected.decision}${rule}${operation}`;
}

/** The decision with its rule id, or the reason when no rule decided (`deny no-match`). */
export function formatOutcome(got: PolicyTestOutcome): string {
  const operation = got.operation === undefined ? '' : ` (${got.operation})`;
  return `${got.decision} ${got.rule ?? got.reason}${operation}`;
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  '),
  );
}

function resultRow(result: PolicyTestResult): string[] {
  return [result.pass ? 'PASS' : 'FAIL', result.test, result.case, formatExpected(result.expected), formatOutcome(result.got)];
}

/** Under a failing row: where the case is, what it sent, and what the engine said. */
function failureDetail(result: PolicyTestResult): string[] {
  return [
    `      at ${result.file}:${result.line}  ${result.identity} → ${result.resource}: ${describeInput(result.input)}`,
    `      got ${formatOutcome(result.got)}: ${result.got.message}`,
  ];
}

function printTable(report: PolicyTestReport, io: CliIO): void {
  const header = ['RESULT', 'TEST', 'CASE', 'EXPECTED', 'GOT'];
  const lines = formatTable([header, ...report.results.map(resultRow)]);
  io.stdout(`${lines[0]}\n`);
  report.results.forEach((result, index) => {
    io.stdout(`${lines[index + 1]}\n`);
    if (!result.pass) io.stdout(`${failureDetail(result).join('\n')}\n`);
  });
}

function summaryLine(report: PolicyTestReport): string {
  const invalid = report.problems.length === 0 ? '' : `; ${report.problems.length} problem(s) in policy tests`;
  return `${report.passed} passed, ${report.failed} failed${invalid}`;
}

function printJson(report: PolicyTestReport, io: CliIO): void {
  io.stdout(`${JSON.stringify(report, null, 2)}\n`);
}

export const policyTestCommand: CliCommand = {
  path: ['policy', 'test'],
  summary: 'run the PolicyTest cases in a config folder against its policies',
  usage: 'gatehouse policy test DIR [--json]',
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { json: { type: 'boolean', default: false } },
    });
    if (positionals.length !== 1) {
      throw new GatehouseError('GH_ERR_USAGE', { detail: 'policy test takes one config folder: gatehouse policy test DIR [--json]' });
    }
    const dir = positionals[0]!;
    const { config, errors } = await loadConfigFolder(dir, io);
    if (errors.length > 0) {
      if (values.json) printJson({ results: [], problems: errors, passed: 0, failed: 0 }, io);
      return 1;
    }
    if (config.policyTests.length === 0) throw new GatehouseError('GH_ERR_POLICY_TEST_NONE', { path: dir });
    await loadSqlParser();
    const report = runPolicyTests(config, new SqlClassifier({}));
    for (const problem of report.problems) io.stderr(`${formatProblem(problem)}\n`);
    if (values.json) printJson(report, io);
    else {
      printTable(report, io);
      io.stdout(`\n${summaryLine(report)}\n`);
    }
    return report.failed === 0 && report.problems.length === 0 ? 0 : 1;
  },
};
