// Tells people a statement waits for them, and how it ended: a JSON POST to a generic webhook and a
// Slack-compatible incoming-webhook message, each optional. Sending never blocks a decision: each
// notification is queued, retried with exponential backoff, and dropped (counted) after the last try.
import type { ApprovalRequest } from '../../api/approvals/approval-service.js';
import type { Logger } from '../../api/logging/logger.js';
import type { ApprovalMetrics } from './approval-metrics.js';

export interface NotificationTargets {
  /** Receives the ApprovalNotification as JSON. */
  readonly webhookUrl?: string;
  /** A Slack (or Mattermost, Rocket.Chat…) incoming-webhook URL: gets `{text, blocks}`. */
  readonly slackUrl?: string;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Per attempt. */
  readonly timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 500, maxDelayMs: 30_000, timeoutMs: 5_000 };

/** The held statement as the sidecar asked about it, plus where its AccessRequest stands. */
export interface ApprovalNotification extends ApprovalRequest {
  readonly type: 'gatehouse.approval.requested' | 'gatehouse.approval.decided';
  readonly accessRequest: { readonly namespace: string; readonly name: string };
  readonly phase: 'Pending' | 'Approved' | 'Denied' | 'Expired';
  readonly decidedBy: readonly string[];
  readonly requiredApprovals: number;
  readonly expiresAt: string;
  /** What an approver runs. */
  readonly approveCommand: string;
}

function slackText(notification: ApprovalNotification): string {
  const target = `${notification.accessRequest.namespace}/${notification.accessRequest.name}`;
  const statement = notification.statement.length > 500 ? `${notification.statement.slice(0, 500)}…` : notification.statement;
  if (notification.phase === 'Pending') {
    return [
      `:hourglass: *${notification.identity}* wants to run on *${notification.resource}* (rule ${notification.policy}/${notification.rule}):`,
      '```' + statement + '```',
      `${notification.reason}. Needs ${notification.requiredApprovals} approval(s) before ${notification.expiresAt}.`,
      `Decide: \`${notification.approveCommand}\` (or \`kubectl gatehouse deny ${notification.accessRequest.name} -n ${notification.accessRequest.namespace} --reason ...\`)`,
    ].join('\n');
  }
  const who = notification.decidedBy.length > 0 ? ` by ${notification.decidedBy.join(', ')}` : '';
  return `${notification.phase === 'Approved' ? ':white_check_mark:' : ':no_entry:'} AccessRequest ${target} (${notification.identity} on ${notification.resource}): *${notification.phase}*${who}.`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export class ApprovalNotifier {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly targets: NotificationTargets,
    private readonly metrics: ApprovalMetrics,
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  /** Queues the notification to every configured target and returns at once. */
  notify(notification: ApprovalNotification): void {
    if (this.targets.webhookUrl) this.track(this.deliver('webhook', this.targets.webhookUrl, notification));
    if (this.targets.slackUrl) {
      const text = slackText(notification);
      this.track(this.deliver('slack', this.targets.slackUrl, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }));
    }
  }

  /** Waits for every queued notification to be sent or given up (shutdown, tests). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  private async deliver(target: 'webhook' | 'slack', url: string, body: unknown): Promise<void> {
    const payload = JSON.stringify(body);
    let wait = this.retry.initialDelayMs;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      const failure = await this.post(url, payload);
      if (failure === undefined) {
        this.metrics.notifications.inc({ target, outcome: 'sent' });
        return;
      }
      this.logger.warn({ target, attempt, detail: failure }, 'approval notification failed');
      if (attempt === this.retry.attempts) break;
      await delay(wait);
      wait = Math.min(wait * 2, this.retry.maxDelayMs);
    }
    this.metrics.notifications.inc({ target, outcome: 'failed' });
  }

  /** undefined on a 2xx answer, else what went wrong. */
  private async post(url: string, payload: string): Promise<string | undefined> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: AbortSignal.timeout(this.retry.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      return response.ok ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }
}
