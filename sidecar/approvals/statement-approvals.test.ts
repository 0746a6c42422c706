// StatementApprovals without sockets: the timeout wins over a silent service, a failing service is
// a denial at once, withdrawal rejects and reaches the service, and grants expire by the clock.
import type { ApprovalRequest, ApprovalService } from '../../api/approvals/approval-service.js';
import { ApprovalWithdrawn, StatementApprovals } from './statement-approvals.js';
import { ScriptedApprovalService } from './testing/scripted-approval-service.js';

const REQUEST: ApprovalRequest = {
  identity: 'app', resource: 'db', policy: 'p', rule: 'r', pod: 'ns/pod', statement: 'DELETE FROM t WHERE id = 1', fingerprint: 'sha256:1', reason: 'why',
};

describe('StatementApprovals', () => {
  it('expires at the rule timeout when the service never answers, withdrawing the request', async () => {
    const service = new ScriptedApprovalService();
    const approvals = new StatementApprovals({ service, pod: 'ns/pod', expiryGraceMs: 50 });
    const started = Date.now();
    const decision = approvals.decide(REQUEST, { approvers: {}, timeout: '100ms' }, new AbortController().signal);
    const asked = await service.next();
    expect(asked.timeoutMs).toBe(100);
    await expect(decision).resolves.toEqual({ outcome: 'expired', decidedBy: [], reason: 'no decision within 100ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
    expect(asked.signal.aborted).toBe(true);
  });

  it('denies at once when the service cannot be asked', async () => {
    const broken: ApprovalService = { requestApproval: () => Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED')) };
    const decision = await new StatementApprovals({ service: broken, pod: 'ns/pod' }).decide(REQUEST, { approvers: {}, timeout: '1m' }, new AbortController().signal);
    expect(decision).toEqual({ outcome: 'denied', decidedBy: [], reason: 'the approval could not be requested (14 UNAVAILABLE: connect ECONNREFUSED)' });
  });

  it('rejects with ApprovalWithdrawn when the caller withdraws, and the service sees it', async () => {
    const service = new ScriptedApprovalService();
    const withdraw = new AbortController();
    const decision = new StatementApprovals({ service, pod: 'ns/pod' }).decide(REQUEST, { approvers: {} }, withdraw.signal);
    const asked = await service.next();
    expect(asked.timeoutMs).toBe(5 * 60_000);
    withdraw.abort();
    await expect(decision).rejects.toBeInstanceOf(ApprovalWithdrawn);
    expect(asked.signal.aborted).toBe(true);
  });

  it('keeps a grant for the window only, per identity, resource, rule and fingerprint', async () => {
    let now = 1_000_000;
    const service = new ScriptedApprovalService();
    const approvals = new StatementApprovals({ service, pod: 'ns/pod', clock: () => now });
    const settings = { approvers: {}, grantWindow: '10m' };
    const decision = approvals.decide(REQUEST, settings, new AbortController().signal);
    (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
    await decision;
    expect(approvals.takeGrant(REQUEST, settings)).toEqual(['alice']);
    expect(approvals.takeGrant({ ...REQUEST, identity: 'other' }, settings)).toBeUndefined();
    expect(approvals.takeGrant({ ...REQUEST, fingerprint: 'sha256:2' }, settings)).toBeUndefined();
    expect(approvals.takeGrant({ ...REQUEST, rule: 'other-rule' }, settings)).toBeUndefined();
    now += 10 * 60_000;
    expect(approvals.takeGrant(REQUEST, settings)).toBeUndefined();
  });

  it('does not grant after a denial or an expiry', async () => {
    const service = new ScriptedApprovalService();
    const approvals = new StatementApprovals({ service, pod: 'ns/pod' });
    const settings = { approvers: {}, grantWindow: '10m' };
    const decision = approvals.decide(REQUEST, settings, new AbortController().signal);
    (await service.next()).answer({ outcome: 'denied', decidedBy: ['bob'] });
    await decision;
    expect(approvals.takeGrant(REQUEST, settings)).toBeUndefined();
  });
});
