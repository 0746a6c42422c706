// Sends AdmissionReviews straight to the operator's webhook over HTTPS with keep-alive, as the API
// server does, and times each: the webhook's latency as the API server sees it, without the loopback
// API server's own request handling in the number.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { V1Pod } from '@kubernetes/client-node';
import { summarize, type LatencySummary } from './latency.js';

export interface DirectBurstResult {
  readonly latency: LatencySummary;
  /** Reviews answered allowed with a JSON patch (the sidecar injected). */
  readonly patched: number;
}

function review(namespace: string, pod: V1Pod): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: pod.metadata?.name,
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] },
      object: { apiVersion: 'v1', kind: 'Pod', ...pod, metadata: { ...pod.metadata, namespace } },
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  });
}

function post(agent: https.Agent, url: URL, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.once('error', reject);
    request.end(body);
  });
}

/**
 * Up to `connections` keep-alive connections to the webhook, reused across bursts as the API server
 * reuses its connections, so a burst measures reviews rather than TLS handshakes.
 */
export function webhookAgent(caPem: string, connections: number): https.Agent {
  return new https.Agent({ keepAlive: true, ca: caPem, maxSockets: connections });
}

/** Sends one review per pod, all at once, and times each round trip. */
export async function directBurst(agent: https.Agent, webhookUrl: string, namespace: string, pods: readonly V1Pod[]): Promise<DirectBurstResult> {
  const url = new URL('/mutate-pods', webhookUrl);
  const timings: number[] = [];
  let patched = 0;
  await Promise.all(pods.map(async (pod) => {
    const body = review(namespace, pod);
    const started = performance.now();
    const { status, text } = await post(agent, url, body);
    timings.push(performance.now() - started);
    if (status !== 200) throw new Error(`webhook answered HTTP ${status}: ${text.slice(0, 500)}`);
    const response = (JSON.parse(text) as { response?: { allowed?: boolean; patch?: string } }).response;
    if (response?.allowed && response.patch) patched++;
  }));
  return { latency: summarize(timings), patched };
}
