// The Grafana dashboard: valid dashboard JSON, the panels issue 7 asks for, every query against
// metrics the code registers, and the chart's copy identical to this one.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildMetricCatalog, type MetricCatalog } from '../prometheus/metric-catalog.js';
import { PENDING_METRICS } from '../prometheus/pending-metrics.js';
import { checkQueries } from '../prometheus/query-check.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');

interface Target { refId: string; expr: string; datasource?: { type: string; uid: string } }
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}

let text: string;
let dashboard: Dashboard;
let catalog: MetricCatalog;

beforeAll(async () => {
  text = await readFile(join(HERE, 'gatehouse-dashboard.json'), 'utf8');
  dashboard = JSON.parse(text) as Dashboard;
  catalog = await buildMetricCatalog();
});

function queryPanels(): Panel[] {
  return dashboard.panels.filter((panel) => panel.type !== 'row');
}

function allQueries(): { where: string; expr: string }[] {
  return queryPanels().flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `${panel.title} ${target.refId}`, expr: target.expr })));
}

describe('gatehouse-dashboard.json', () => {
  it('is a dashboard Grafana can import: uid, schema version, unique panel ids, a Prometheus data source variable', () => {
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.find((variable) => variable.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const panel of queryPanels()) {
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
    }
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row += 1) {
        for (let column = x; column < x + w; column += 1) {
          const key = `${row}:${column}`;
          expect(cells.get(key)).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
  });

  it('has the panels issue 7 asks for', () => {
    const titles = queryPanels().map((panel) => panel.title);
    expect(titles).toEqual(expect.arrayContaining([
      'Blocked statements by identity, resource and rule', 'Blocked statements by rule', 'Blocked statements by identity', 'Decisions',
      'Approvals pending', 'Time to decision p50 / p99', 'Proxy-added latency p50 / p99', 'Active sessions',
      "Credentials' remaining lifetime", 'Snapshot ACKs and NACKs', 'Connected sidecars',
    ]));
    const latency = queryPanels().find((panel) => panel.title === 'Proxy-added latency p50 / p99');
    expect(latency?.targets?.map((target) => target.expr.slice(0, 25))).toEqual(['histogram_quantile(0.5, s', 'histogram_quantile(0.99, ']);
  });

  it('queries only metrics and labels the code registers (or that are explicitly pending)', () => {
    const result = checkQueries(catalog, allQueries());
    expect(result.problems).toEqual([]);
    if (result.pendingUsed.length > 0) console.info(`dashboard uses metrics still being built: ${result.pendingUsed.join(', ')}`);
  });

  it('uses every pending metric somewhere, so the list holds nothing stale', async () => {
    const alerts = parse(await readFile(join(REPO_ROOT, 'config', 'prometheus', 'gatehouse-alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const alertQueries = alerts.groups.flatMap((group) => group.rules.map((rule) => ({ where: rule.alert, expr: rule.expr })));
    const used = new Set(checkQueries(catalog, [...allQueries(), ...alertQueries]).pendingUsed);
    expect(PENDING_METRICS.map((metric) => metric.name).filter((name) => !used.has(name))).toEqual([]);
  });

  it('filters sidecar panels by the namespace, identity and resource variables', () => {
    for (const name of ['namespace', 'identity', 'resource']) expect(dashboard.templating.list.map((variable) => variable.name)).toContain(name);
    for (const { where, expr } of allQueries()) {
      if (/gatehouse_sidecar_(statements|blocked_statements|active_sessions|masked_values)_?/.test(expr)) {
        expect({ where, filtered: expr.includes('identity=~"$identity"') && expr.includes('resource=~"$resource"') }).toEqual({ where, filtered: true });
      }
    }
  });

  it('is shipped unchanged in the chart', async () => {
    expect(await readFile(join(REPO_ROOT, 'charts', 'gatehouse', 'dashboards', 'gatehouse.json'), 'utf8')).toBe(text);
  });
});
