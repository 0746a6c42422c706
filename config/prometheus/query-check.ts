// Checks PromQL queries against the metric catalog: every series must belong to a metric the code
// registers (or to one explicitly pending), and every label a query matches or groups by must be one
// that metric carries or that Prometheus adds when it scrapes.
import type { MetricCatalog } from './metric-catalog.js';
import { PENDING_METRICS } from './pending-metrics.js';
import { promqlReferences } from './promql-references.js';

/** Series Prometheus itself produces for every target. */
const PROMETHEUS_SERIES = new Set(['up']);
/** Labels the ServiceMonitor/PodMonitor scrape adds to every series. */
const TARGET_LABELS = ['namespace', 'pod', 'container', 'instance', 'job', 'service', 'endpoint'];

export interface QueryProblem {
  readonly where: string;
  readonly problem: string;
}

export interface QueryCheck {
  readonly problems: readonly QueryProblem[];
  /** Pending metric names the queries use. */
  readonly pendingUsed: readonly string[];
  /** Every series name the queries use. */
  readonly seriesUsed: readonly string[];
}

export function checkQueries(catalog: MetricCatalog, queries: readonly { where: string; expr: string }[]): QueryCheck {
  const pending = new Set(PENDING_METRICS.map((metric) => metric.name));
  const problems: QueryProblem[] = [];
  const pendingUsed = new Set<string>();
  const seriesUsed = new Set<string>();
  for (const { where, expr } of queries) {
    let references;
    try {
      references = promqlReferences(expr);
    } catch (error) {
      problems.push({ where, problem: `cannot tokenize: ${(error as Error).message}` });
      continue;
    }
    if (references.series.length === 0) problems.push({ where, problem: 'selects no series' });
    const allowedLabels = new Set(TARGET_LABELS);
    let labelsKnown = true;
    for (const series of references.series) {
      seriesUsed.add(series);
      const family = catalog.familyOf(series);
      const base = series.replace(/_(bucket|sum|count)$/, '');
      if (family) {
        family.labelNames.forEach((label) => allowedLabels.add(label));
        if (family.kind === 'histogram') allowedLabels.add('le');
      } else if (pending.has(series) || pending.has(base)) {
        pendingUsed.add(pending.has(series) ? series : base);
        labelsKnown = false;
      } else if (PROMETHEUS_SERIES.has(series)) {
        labelsKnown = false;
      } else {
        problems.push({ where, problem: `metric ${series} is in no registry and not pending` });
        labelsKnown = false;
      }
    }
    // Labels can only be judged when every series' labels are known.
    if (!labelsKnown) continue;
    for (const label of references.labels) {
      if (!allowedLabels.has(label)) problems.push({ where, problem: `label ${label} is carried by none of ${references.series.join(', ')}` });
    }
  }
  return { problems, pendingUsed: [...pendingUsed].sort(), seriesUsed: [...seriesUsed].sort() };
}
