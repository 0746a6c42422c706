// The alert rules: well-formed, covering what issue 7 asks for, querying only metrics the code
// registers, documented, and identical wherever they are shipped (chart, kustomize PrometheusRule).
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildMetricCatalog, type MetricCatalog } from './metric-catalog.js';
import { PENDING_METRICS } from './pending-metrics.js';
import { checkQueries } from './query-check.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}

let rules: RuleFile;
let catalog: MetricCatalog;

beforeAll(async () => {
  rules = parse(await readFile(join(HERE, 'gatehouse-alerts.yaml'), 'utf8')) as RuleFile;
  catalog = await buildMetricCatalog();
});

function allRules(): AlertRule[] {
  return rules.groups.flatMap((group) => group.rules);
}

describe('gatehouse-alerts.yaml', () => {
  it('has uniquely named groups and alerts, each with a severity, a duration and annotations', () => {
    const groupNames = rules.groups.map((group) => group.name);
    expect(new Set(groupNames).size).toBe(groupNames.length);
    const names = allRules().map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of allRules()) {
      expect(rule.alert).toMatch(/^Gatehouse[A-Z][A-Za-z]+$/);
      expect(['warning', 'critical']).toContain(rule.labels?.severity);
      expect(rule.for).toMatch(/^[0-9]+[smh]$/);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
    }
  });

  it('covers what issue 7 asks for', () => {
    const names = allRules().map((rule) => rule.alert);
    expect(names).toEqual(expect.arrayContaining([
      'GatehouseSidecarNacking', 'GatehouseControlPlaneDown', 'GatehouseSidecarsDisconnected',
      'GatehouseApprovalsPendingTooLong', 'GatehouseApprovalsExpired', 'GatehouseBlockedStatementsSpike', 'GatehouseCredentialRenewalFailing',
    ]));
  });

  it('queries only metrics and labels the code registers (or that are explicitly pending)', () => {
    const result = checkQueries(catalog, allRules().map((rule) => ({ where: rule.alert ?? rule.record ?? '?', expr: rule.expr })));
    expect(result.problems).toEqual([]);
    if (result.pendingUsed.length > 0) console.info(`alerts use metrics still being built: ${result.pendingUsed.join(', ')}`);
  });

  it('points every alert at a section of docs/observability.md', async () => {
    const doc = await readFile(join(REPO_ROOT, 'docs', 'observability.md'), 'utf8');
    const anchors = new Set([...doc.matchAll(/^#{2,4} (.+)$/gm)].map((match) => match[1].trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const rule of allRules()) {
      const runbook = rule.annotations?.runbook ?? '';
      expect(runbook).toBe(`docs/observability.md#${(rule.alert ?? '').toLowerCase()}`);
      expect(anchors).toContain((rule.alert ?? '').toLowerCase());
    }
  });

  it('is shipped unchanged in the chart and in the kustomize PrometheusRule', async () => {
    const source = await readFile(join(HERE, 'gatehouse-alerts.yaml'), 'utf8');
    expect(await readFile(join(REPO_ROOT, 'charts', 'gatehouse', 'files', 'gatehouse-alerts.yaml'), 'utf8')).toBe(source);
    const rule = parse(await readFile(join(HERE, 'prometheus-rule.yaml'), 'utf8')) as { kind: string; spec: RuleFile };
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.spec).toEqual(rules);
  });
});

describe('the metric catalog', () => {
  it('is read from the real registries of the operator and the sidecar', () => {
    // A few anchors per process, with their labels, so a renamed metric or label shows up here.
    expect(catalog.families.get('gatehouse_sidecar_blocked_statements_total')).toMatchObject({ kind: 'counter', process: 'sidecar', labelNames: ['resource', 'identity', 'rule'] });
    expect(catalog.familyOf('gatehouse_sidecar_added_latency_seconds_bucket')).toMatchObject({ kind: 'histogram' });
    expect(catalog.familyOf('gatehouse_sidecar_active_sessions_bucket')).toBeUndefined();
    expect(catalog.families.get('gatehouse_sidecar_policy_snapshot_expired')?.process).toBe('sidecar');
    expect(catalog.families.get('gatehouse_recording_upload_backlog_events')?.process).toBe('sidecar');
    expect(catalog.families.get('gatehouse_control_plane_nacks_total')).toMatchObject({ process: 'operator', labelNames: ['node', 'type'] });
    expect(catalog.families.get('gatehouse_control_plane_credential_failures_total')?.labelNames).toEqual(['namespace', 'resource']);
    expect(catalog.families.get('gatehouse_admission_requests_total')?.process).toBe('operator');
    expect(catalog.families.get('gatehouse_approvals_decided_total')).toMatchObject({ process: 'operator', labelNames: ['outcome'] });
  });

  it('finds unknown metrics and labels in queries', () => {
    const result = checkQueries(catalog, [
      { where: 'typo', expr: 'sum(rate(gatehouse_sidecar_blocked_statement_total[5m]))' },
      { where: 'label', expr: 'sum by (identiy) (gatehouse_sidecar_active_sessions)' },
      { where: 'fine', expr: 'sum by (namespace, identity) (gatehouse_sidecar_active_sessions{resource="x"})' },
    ]);
    expect(result.problems.map((problem) => problem.where)).toEqual(['typo', 'label']);
  });

  it('keeps the pending list honest: nothing pending is already registered', () => {
    for (const pending of PENDING_METRICS) expect(catalog.familyOf(pending.name) ?? catalog.families.get(pending.name)).toBeUndefined();
  });
});
