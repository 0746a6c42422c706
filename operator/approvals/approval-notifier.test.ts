// Notifications to a local HTTP receiver: the generic JSON and the Slack payload arrive, failures
// are retried with backoff until they succeed or the attempts run out, and notify() never waits.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { createApprovalMetrics, type ApprovalMetrics } from './approval-metrics.js';
import { ApprovalNotifier, type ApprovalNotification } from './approval-notifier.js';

const FAST = { attempts: 4, initialDelayMs: 20, maxDelayMs: 100, timeoutMs: 2_000 };

const NOTIFICATION: ApprovalNotification = {
  type: 'gatehouse.approval.requested', accessRequest: { namespace: 'payments', name: 'app-x1' }, identity: 'app', resource: 'orders-db',
  policy: 'app-policy', rule: 'deletes', pod: 'payments/app-1', statement: 'DELETE FROM orders WHERE id = 1', fingerprint: 'sha256:ab',
  reason: 'deletes need approval', phase: 'Pending', decidedBy: [], requiredApprovals: 2, expiresAt: '2026-11-22T12:05:00.000Z',
  approveCommand: 'kubectl gatehouse approve app-x1 -n payments --reason "..."',
};

interface Hit {
  readonly path: string;
  readonly at: number;
  readonly body: Record<string, unknown>;
}

let server: Server;
let url: string;
let hits: Hit[];
let answer: (hit: Hit, count: number) => number;
let metrics: ApprovalMetrics;

beforeEach(async () => {
  hits = [];
  answer = () => 204;
  metrics = createApprovalMetrics(new Registry());
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const hit = { path: request.url ?? '', at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
      hits.push(hit);
      response.writeHead(answer(hit, hits.filter((other) => other.path === hit.path).length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function count(target: string, outcome: string): Promise<number> {
  const { values } = await metrics.notifications.get();
  return values.find((value) => value.labels.target === target && value.labels.outcome === outcome)?.value ?? 0;
}

describe('ApprovalNotifier', () => {
  it('POSTs the notification as JSON and a Slack message with the approve command', async () => {
    const notifier = new ApprovalNotifier({ webhookUrl: `${url}/generic`, slackUrl: `${url}/slack` }, metrics, silentLogger(), FAST);
    notifier.notify(NOTIFICATION);
    await notifier.flush();
    expect(hits.find((hit) => hit.path === '/generic')!.body).toEqual(NOTIFICATION);
    const slack = hits.find((hit) => hit.path === '/slack')!.body as { text: string; blocks: unknown[] };
    expect(slack.text).toContain('*app* wants to run on *orders-db* (rule app-policy/deletes)');
    expect(slack.text).toContain('```DELETE FROM orders WHERE id = 1```');
    expect(slack.text).toContain('Needs 2 approval(s)');
    expect(slack.text).toContain('`kubectl gatehouse approve app-x1 -n payments --reason "..."`');
    expect(slack.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: slack.text } }]);
    expect(await count('webhook', 'sent')).toBe(1);
    expect(await count('slack', 'sent')).toBe(1);
  });

  it('retries failures with growing delays until one succeeds', async () => {
    answer = (_hit, attempt) => (attempt < 3 ? 503 : 204);
    const notifier = new ApprovalNotifier({ webhookUrl: `${url}/generic` }, metrics, silentLogger(), FAST);
    notifier.notify(NOTIFICATION);
    await notifier.flush();
    expect(hits).toHaveLength(3);
    const gaps = [hits[1]!.at - hits[0]!.at, hits[2]!.at - hits[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[1]).toBeGreaterThanOrEqual(35);
    expect(await count('webhook', 'sent')).toBe(1);
    expect(await count('webhook', 'failed')).toBe(0);
  });

  it('gives up after the last attempt and counts the failure; an unreachable URL is a failure too', async () => {
    answer = () => 500;
    const notifier = new ApprovalNotifier({ webhookUrl: `${url}/generic`, slackUrl: 'http://127.0.0.1:1/nothing-listens' }, metrics, silentLogger(), FAST);
    notifier.notify(NOTIFICATION);
    await notifier.flush();
    expect(hits).toHaveLength(4);
    expect(await count('webhook', 'failed')).toBe(1);
    expect(await count('slack', 'failed')).toBe(1);
  });

  it('returns at once: a slow receiver never delays the caller', async () => {
    answer = () => 204;
    const slow = createServer((_request, response) => setTimeout(() => response.writeHead(204).end(), 300));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
    const notifier = new ApprovalNotifier({ webhookUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/` }, metrics, silentLogger(), FAST);
    const started = performance.now();
    notifier.notify(NOTIFICATION);
    expect(performance.now() - started).toBeLessThan(50);
    await notifier.flush();
    expect(await count('webhook', 'sent')).toBe(1);
    await new Promise<void>((resolve) => slow.close(() => resolve()));
  });
});
