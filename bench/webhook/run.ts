// Admission and reconcile benchmark (issue 5): p50/p99 latency of N concurrent pod creations through
// the loopback API server and the operator's mutating webhook (goal p99 <= 20 ms), against the same
// creations in a namespace without injection; and the time for the operator to reconcile M policies.
//   npm run build && node --import tsx bench/webhook/run.ts [--pods 100] [--rounds 3] [--policies 1000]
//     [--policy-concurrency 10] [--connections N] [--protocols h2,http1] [--without-validation] [--json FILE]
//     [--operator-cpu-prof DIR] [--operator-node-options="FLAGS"] [--operator-log-level info] [--operator-args="FLAGS"] [--operator-output FILE]
//     [--operator-gc]
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import { directBurst, h2loadBurst, h2Transport, http1Transport, review, type WebhookTransport } from './admission-review-client.js';
import { histogramDelta, histogramQuantile, parseHistogram, percentile, summarize, type LatencySummary } from './latency.js';
import { BASELINE_NAMESPACE, INJECTED_NAMESPACE, startWebhookCluster, type GcPause, type WebhookCluster } from './webhook-cluster.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HISTOGRAM = 'gatehouse_admission_request_duration_seconds';
const GOAL_P99_MS = 20;

const ms = (value: number) => (Number.isNaN(value) ? '—' : value.toFixed(1));

/** Total GC pause in a burst and how many; a mark-compact among them is named, it is the long kind. */
function gcCell(pauses: readonly GcPause[]): string {
  const total = pauses.reduce((sum, pause) => sum + pause.durationMs, 0);
  const major = pauses.filter((pause) => pause.kind === 2).length;
  return `${total.toFixed(1)} (${pauses.length}${major > 0 ? `, ${major} mark-compact` : ''})`;
}

/**
 * When a burst ran, on the clock V8's CPU profiles use (CLOCK_MONOTONIC, µs, shared by every process
 * on the machine), so --json can tell which samples of an --operator-cpu-prof profile fall inside it.
 */
interface MonotonicWindow {
  readonly startUs: number;
  readonly endUs: number;
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

interface BurstCpu {
  readonly operatorMainMs: number;
  readonly operatorAllMs: number;
  readonly harness: NodeJS.CpuUsage;
}

interface BurstResult {
  readonly namespace: string;
  readonly client: LatencySummary;
  readonly injected: number;
  readonly monotonic: MonotonicWindow;
}

function pod(name: string): V1Pod {
  return { metadata: { name }, spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'example/app:1.0' }] } };
}

/** Creates `count` pods at once and times each POST (admission included) from the client's side. */
async function burst(core: CoreV1Api, namespace: string, prefix: string, count: number): Promise<BurstResult> {
  const timings: number[] = [];
  let injected = 0;
  const startUs = monotonicUs();
  await Promise.all(Array.from({ length: count }, async (_, index) => {
    const started = performance.now();
    const created = await core.createNamespacedPod({ namespace, body: pod(`${prefix}-${index}`) });
    timings.push(performance.now() - started);
    if (created.spec?.initContainers?.some((container) => container.name === 'gatehouse-sidecar')) injected++;
  }));
  return { namespace, client: summarize(timings), injected, monotonic: { startUs, endUs: monotonicUs() } };
}

interface ReconcileResult {
  readonly policies: number;
  readonly createMs: number;
  readonly allReadyMs: number;
  readonly lagAfterLastCreateMs: number;
}

function policy(index: number): Record<string, unknown> {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: `bench-policy-${String(index).padStart(4, '0')}` },
    spec: { subjects: [{ identity: 'ci-runner' }], resources: ['orders-db'], rules: [{ name: 'read', effect: 'allow', operations: ['read'] }] },
  };
}

interface PolicyList {
  items: Array<{ metadata: { name: string; generation?: number }; status?: { conditions?: Array<{ type: string; status: string; observedGeneration?: number }> } }>;
}

/** Creates the policies (through the validating webhook, `inFlight` at a time), then waits until every one is Ready=True. */
async function reconcile(custom: CustomObjectsApi, count: number, inFlight: number): Promise<ReconcileResult> {
  const target = { group: 'gatehouse.dev', version: 'v1alpha1', namespace: INJECTED_NAMESPACE, plural: 'accesspolicies' };
  const started = performance.now();
  let next = 0;
  const timings: number[] = [];
  // Creation latency per hundred policies already present: shows whether admitting one costs more as they grow.
  const byHundred = () => Array.from({ length: Math.ceil(timings.length / 100) }, (_, block) => ms(percentile(timings.slice(block * 100, block * 100 + 100).filter((value) => value !== undefined), 0.5))).join(', ');
  try {
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const index = next++;
        const sent = performance.now();
        try {
          await custom.createNamespacedCustomObject({ ...target, body: policy(index) });
        } catch (error) {
          throw new Error(`creating policy ${index} failed after ${ms(performance.now() - sent)} ms: ${error instanceof Error ? error.message.split('\n').slice(0, 3).join(' ') : String(error)}`);
        }
        timings[index] = performance.now() - sent;
      }
    }));
  } finally {
    console.log(`\npolicy creation p50 per 100 policies (ms): ${byHundred()}`);
  }
  const created = performance.now();
  const deadline = Date.now() + 300_000;
  for (;;) {
    const list = (await custom.listNamespacedCustomObject(target)) as PolicyList;
    const ready = list.items.filter((item) => item.metadata.name.startsWith('bench-policy-') && item.status?.conditions?.some(
      (condition) => condition.type === 'Ready' && condition.status === 'True' && condition.observedGeneration === item.metadata.generation,
    )).length;
    if (ready === count) break;
    if (Date.now() > deadline) throw new Error(`only ${ready} of ${count} policies became Ready within 300 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const allReady = performance.now();
  return { policies: count, createMs: created - started, allReadyMs: allReady - started, lagAfterLastCreateMs: allReady - created };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '3' },
      policies: { type: 'string', default: '1000' },
      'policy-concurrency': { type: 'string', default: '10' },
      // The API server opens as many connections to a webhook as it has calls in flight.
      connections: { type: 'string' },
      // Straight-to-the-webhook clients, each measured every round: h2load (a C HTTP/2 client, as cheap
      // per request as the kube-apiserver's Go client), node's HTTP/2 client, and node's HTTP/1.1.
      protocols: { type: 'string', default: 'h2load,h2,http1' },
      'without-validation': { type: 'boolean', default: false },
      json: { type: 'string' },
      'operator-cpu-prof': { type: 'string' },
      // The operator runs with its image's node flags unless told otherwise ("" for node's defaults).
      'operator-node-options': { type: 'string' },
      // info by default, as deployed; warn or error to see what logging costs.
      'operator-log-level': { type: 'string' },
      // More operator flags, space-separated, e.g. "--admission-warmup-reviews=0" for a cold start.
      'operator-args': { type: 'string' },
      // Write everything the operator printed (logs, and e.g. --trace-gc lines) to this file at the end.
      'operator-output': { type: 'string' },
      // Add up the operator's GC pauses inside each measured burst (gc-observer.mjs, perf_hooks 'gc' entries).
      'operator-gc': { type: 'boolean', default: false },
    },
  });
  const pods = Number(values.pods);
  const rounds = Number(values.rounds);
  const policies = Number(values.policies);
  const nodeOptions = values['operator-node-options'];
  const cluster: WebhookCluster = await startWebhookCluster(repoRoot, {
    ...(values['operator-cpu-prof'] ? { operatorCpuProfileDir: values['operator-cpu-prof'] } : {}),
    ...(nodeOptions === undefined ? {} : { operatorNodeOptions: nodeOptions.split(/\s+/).filter(Boolean) }),
    ...(values['operator-log-level'] ? { operatorLogLevel: values['operator-log-level'] } : {}),
    ...(values['operator-args'] ? { operatorArgs: values['operator-args'].split(/\s+/).filter(Boolean) } : {}),
    operatorGc: values['operator-gc'],
  });
  const withGc = values['operator-gc'];
  try {
    const { core, custom } = cluster;
    // Warm-up: first TLS connections, JIT, the operator's caches.
    await burst(core, INJECTED_NAMESPACE, 'warmup', 20);
    await burst(core, BASELINE_NAMESPACE, 'warmup', 20);
    const protocols = values.protocols.split(',');
    for (const name of protocols) {
      if (!['h2load', 'h2', 'http1'].includes(name)) throw new Error(`--protocols: unknown protocol ${JSON.stringify(name)}; use h2load, h2 and/or http1`);
    }
    const h2 = h2Transport(cluster.webhookUrl, cluster.webhookCaPem);
    const http1 = protocols.includes('http1') ? http1Transport(cluster.webhookUrl, cluster.webhookCaPem, Number(values.connections ?? pods)) : undefined;
    const transportOf = (name: string): WebhookTransport | undefined => (name === 'h2' ? h2 : name === 'http1' ? http1 : undefined);
    const podsNamed = (prefix: string) => Array.from({ length: pods }, (_, index) => pod(`${prefix}-${index}`));
    // Warm-up opens the connections (TLS handshakes) that the rounds then reuse.
    for (const transport of [h2, http1]) if (transport) await directBurst(transport, INJECTED_NAMESPACE, podsNamed(`direct-warmup-${transport.protocol}`));

    const cpuNow = async (): Promise<BurstCpu> => ({ operatorMainMs: await cluster.operatorMainThreadCpuMs(), operatorAllMs: await cluster.operatorProcessCpuMs(), harness: process.cpuUsage() });
    /** CPU per review: the operator's event loop, all its threads, and this process (the loopback API server and node's clients). */
    const perReview = (before: BurstCpu, after: BurstCpu) => {
      const harness = process.cpuUsage(before.harness);
      return {
        cpuPerReviewMs: (after.operatorMainMs - before.operatorMainMs) / pods,
        operatorThreadsCpuPerReviewMs: (after.operatorAllMs - before.operatorAllMs) / pods,
        harnessCpuPerReviewMs: (harness.user + harness.system) / 1000 / pods,
      };
    };
    /** One measured burst of `pods` reviews with one client, and the operator's main-thread CPU it took. */
    const measure = async (protocol: string, label: string): Promise<{ latency: LatencySummary; cpuPerReviewMs: number; operatorThreadsCpuPerReviewMs: number; harnessCpuPerReviewMs: number; window: [number, number]; monotonic: { unmeasured: MonotonicWindow; measured: MonotonicWindow } }> => {
      const transport = transportOf(protocol);
      if (transport) {
        // The webhook server closes HTTP/1.1 connections idle for 5 s; re-open them unmeasured, as steady traffic would keep them.
        const unmeasuredUs = monotonicUs();
        await directBurst(transport, INJECTED_NAMESPACE, podsNamed(`direct-warm-${label}`));
        const unmeasured = { startUs: unmeasuredUs, endUs: monotonicUs() };
        const cpuBefore = await cpuNow();
        const started = Date.now();
        const startUs = monotonicUs();
        const measured = await directBurst(transport, INJECTED_NAMESPACE, podsNamed(`direct-${label}`));
        const window: [number, number] = [started, Date.now()];
        const monotonic = { unmeasured, measured: { startUs, endUs: monotonicUs() } };
        const cpu = perReview(cpuBefore, await cpuNow());
        if (measured.patched !== pods) throw new Error(`only ${measured.patched} of ${pods} direct ${protocol} reviews were answered with a patch`);
        return { latency: measured.latency, ...cpu, window, monotonic };
      }
      // h2load sends one body `pods` times; the same body through node's client must come back patched.
      const body = review(INJECTED_NAMESPACE, pod(`direct-${label}`));
      const answer = JSON.parse((await h2.post('/mutate-pods', body)).text) as { response?: { allowed?: boolean; patch?: string } };
      if (!answer.response?.allowed || !answer.response.patch) throw new Error(`the h2load review was not answered with a patch: ${JSON.stringify(answer).slice(0, 300)}`);
      const url = new URL('/mutate-pods', cluster.webhookUrl).href;
      // Unmeasured first, as for the other clients: the same burst just before the measured one.
      const unmeasuredUs = monotonicUs();
      await h2loadBurst(url, body, pods);
      const unmeasured = { startUs: unmeasuredUs, endUs: monotonicUs() };
      const cpuBefore = await cpuNow();
      // The window includes h2load's start and TLS handshake: GC then delays the first streams too.
      const started = Date.now();
      const startUs = monotonicUs();
      const latency = await h2loadBurst(url, body, pods);
      const window: [number, number] = [started, Date.now()];
      const monotonic = { unmeasured, measured: { startUs, endUs: monotonicUs() } };
      return { latency, ...perReview(cpuBefore, await cpuNow()), window, monotonic };
    };

    interface DirectResult { readonly protocol: string; readonly latency: LatencySummary; readonly cpuPerReviewMs: number; readonly operatorThreadsCpuPerReviewMs: number; readonly harnessCpuPerReviewMs: number; readonly window: [number, number]; readonly monotonic: { unmeasured: MonotonicWindow; measured: MonotonicWindow } }
    const results: Array<{ round: number; injected: BurstResult; baseline: BurstResult; direct: DirectResult[]; webhookP50: number; webhookP99: number }> = [];
    for (let round = 1; round <= rounds; round++) {
      const baseline = await burst(core, BASELINE_NAMESPACE, `round${round}`, pods);
      const before = parseHistogram(await cluster.operatorMetrics(), HISTOGRAM, { webhook: 'mutate-pods' });
      const injected = await burst(core, INJECTED_NAMESPACE, `round${round}`, pods);
      const delta = histogramDelta(parseHistogram(await cluster.operatorMetrics(), HISTOGRAM, { webhook: 'mutate-pods' }), before);
      if (injected.injected !== pods) throw new Error(`only ${injected.injected} of ${pods} pods got the sidecar`);
      if (baseline.injected !== 0) throw new Error(`${baseline.injected} pods in ${BASELINE_NAMESPACE} got a sidecar; that namespace did not opt in`);
      const direct: DirectResult[] = [];
      // Rotate which client goes first, so none is always the one measured right after the pod creations. Until
      // 2026-11-22 that burst also shared the loop with the control plane recomputing every pod's snapshot; now
      // a pod event costs that pod's snapshot only, and the rounds with h2load first (1, 4) are compared in Results.
      const order = protocols.map((_, index) => protocols[(index + round - 1) % protocols.length]!);
      for (const protocol of order) direct.push({ protocol, ...(await measure(protocol, `${protocol}-${round}`)) });
      direct.sort((left, right) => protocols.indexOf(left.protocol) - protocols.indexOf(right.protocol));
      results.push({ round, injected, baseline, direct, webhookP50: histogramQuantile(delta, 0.5), webhookP99: histogramQuantile(delta, 0.99) });
    }
    h2.close();
    http1?.close();
    // The operator reports a GC a moment after it ends, through a pipe: let the last burst's lines arrive.
    if (withGc) await new Promise((resolve) => setTimeout(resolve, 200));

    console.log(`\n${pods} concurrent pod creations, latency in ms (p50 / p99 / max)\n`);
    const gcHead = (protocol: string) => (withGc ? [`operator GC in the ${protocol} burst (ms, pauses)`] : []);
    const directHeads = protocols.flatMap((protocol) => [`AdmissionReview straight to the webhook, ${protocol}`, `operator event-loop CPU per ${protocol} review`, `operator CPU per ${protocol} review, all threads`, ...gcHead(protocol)]);
    console.log(`| round | pod POST through the API server, injected | same, namespace without injection | webhook server time (histogram p50 / p99) | ${directHeads.join(' | ')} |`);
    console.log(`| ---: | ---: | ---: | ---: |${directHeads.map(() => ' ---: |').join('')}`);
    const triple = (summary: LatencySummary) => `${ms(summary.p50)} / ${ms(summary.p99)} / ${ms(summary.max)}`;
    const cpu = (value: number) => (Number.isNaN(value) ? '—' : value.toFixed(3));
    for (const { round, injected, baseline, direct, webhookP50, webhookP99 } of results) {
      const cells = direct.flatMap((result) => [triple(result.latency), cpu(result.cpuPerReviewMs), cpu(result.operatorThreadsCpuPerReviewMs), ...(withGc ? [gcCell(cluster.operatorGcPauses(...result.window))] : [])]);
      console.log(`| ${round} | ${triple(injected.client)} | ${triple(baseline.client)} | ${ms(webhookP50)} / ${ms(webhookP99)} | ${cells.join(' | ')} |`);
    }
    for (const protocol of protocols) {
      if (results.length === 0) break;
      const worstP99 = Math.max(...results.map((result) => result.direct.find((entry) => entry.protocol === protocol)?.latency.p99 ?? Number.NaN));
      console.log(`\ngoal: admission p99 <= ${GOAL_P99_MS} ms (AdmissionReview round trip to the webhook, ${protocol}) — ${worstP99 <= GOAL_P99_MS ? 'met' : 'NOT met'} (worst round p99 ${ms(worstP99)} ms)`);
    }
    if (values['without-validation']) await cluster.removeValidatingWebhook();
    const reconciled = await reconcile(custom, policies, Number(values['policy-concurrency']));
    console.log(`\n${reconciled.policies} AccessPolicies: created in ${ms(reconciled.createMs)} ms (${values['without-validation'] ? 'validating webhook removed' : 'validating webhook included'}), all Ready=True after ${ms(reconciled.allReadyMs)} ms (${ms(reconciled.lagAfterLastCreateMs)} ms after the last create)`);
    if (values.json) await writeFile(values.json, `${JSON.stringify({ pods, rounds: results, reconcile: reconciled }, null, 2)}\n`);
  } catch (error) {
    console.error(`operator log tail:\n${cluster.operatorLogs().slice(-3000)}`);
    throw error;
  } finally {
    await cluster.close();
    if (values['operator-output']) await writeFile(values['operator-output'], cluster.operatorLogs());
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exitCode = 1;
});
