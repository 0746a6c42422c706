// Test double of the ApprovalService that a test answers by hand: each request waits until the
// test approves or denies it, and a withdrawn request (the abort signal) is seen by the test.
import type { ApprovalDecision, ApprovalRequest, ApprovalService } from '../../../api/approvals/approval-service.js';

export interface AskedApproval {
  readonly request: ApprovalRequest;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  answer(decision: ApprovalDecision): void;
}

export class ScriptedApprovalService implements ApprovalService {
  readonly asked: AskedApproval[] = [];
  private waiters: ((asked: AskedApproval) => void)[] = [];

  requestApproval(request: ApprovalRequest, options: { readonly signal: AbortSignal; readonly timeoutMs: number }): Promise<ApprovalDecision> {
    return new Promise((resolve, reject) => {
      const asked: AskedApproval = { request, timeoutMs: options.timeoutMs, signal: options.signal, answer: resolve };
      options.signal.addEventListener('abort', () => reject(new Error('withdrawn')), { once: true });
      this.asked.push(asked);
      const waiter = this.waiters.shift();
      waiter?.(asked);
    });
  }

  /** The oldest request not yet taken by a test, waiting for one to arrive if need be. */
  next(timeoutMs = 5000): Promise<AskedApproval> {
    const already = this.asked[this.taken];
    if (already) {
      this.taken++;
      return Promise.resolve(already);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no approval request arrived')), timeoutMs);
      this.waiters.push((asked) => {
        clearTimeout(timer);
        this.taken++;
        resolve(asked);
      });
    });
  }

  private taken = 0;
}
