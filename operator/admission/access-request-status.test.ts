// The rules of deciding an AccessRequest through its status, case by case (the webhook around
// them is exercised with the loopback API server and kubectl in operator/approvals).
import type { AccessRequest } from '../../api/kinds/kinds.js';
import { decideStatusChange, type DeciderInfo, type StatusChange } from './access-request-status.js';

const NOW = new Date('2026-11-22T12:00:00.000Z');
const OPERATOR = 'system:serviceaccount:gatehouse-system:gatehouse-operator';
const ALICE: DeciderInfo = { username: 'alice@example.com', groups: ['dba', 'system:authenticated'] };
const BOB: DeciderInfo = { username: 'bob@example.com', groups: ['dba'] };
const MALLORY: DeciderInfo = { username: 'mallory@example.com', groups: ['devs'] };

type Status = NonNullable<AccessRequest['status']>;

function request(status: Status | undefined, required = 1): AccessRequest {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessRequest', metadata: { name: 'app-x1', namespace: 'payments' },
    spec: {
      identity: 'app', resource: 'db', policy: 'p', rule: 'deletes', statement: 'DELETE FROM t', fingerprint: 'sha256:1',
      requester: 'system:serviceaccount:payments:app', approvers: { groups: ['dba'], users: ['pager@example.com'] }, requiredApprovals: required,
    },
    ...(status ? { status } : {}),
  };
}

const PENDING: Status = { phase: 'Pending', expiresAt: '2026-11-22T12:05:00.000Z', approvals: [] };

function change(user: DeciderInfo, old: Status | undefined, next: Status, required = 1): StatusChange {
  return { user, oldObject: request(old, required), object: request(next, required), operatorUsers: [OPERATOR], now: NOW };
}

function appended(old: Status, entry: NonNullable<Status['approvals']>[number]): Status {
  return { ...old, approvals: [...(old.approvals ?? []), entry] };
}

describe('decideStatusChange', () => {
  it('lets only the operator initialise the status, Pending and without decisions', () => {
    expect(decideStatusChange(change({ username: OPERATOR, groups: [] }, undefined, PENDING))).toEqual({ allowed: true, status: PENDING });
    expect(decideStatusChange(change(ALICE, undefined, PENDING))).toMatchObject({ allowed: false, message: expect.stringMatching(/only the Gatehouse operator initialises/) });
    expect(decideStatusChange(change({ username: OPERATOR, groups: [] }, undefined, { phase: 'Approved' }))).toMatchObject({ allowed: false });
  });

  it('records the authenticated user, not the one the client wrote, and approves at N', () => {
    const verdict = decideStatusChange(change(ALICE, PENDING, appended(PENDING, { decision: 'approve', user: 'pager@example.com', reason: 'ok' })));
    expect(verdict).toEqual({
      allowed: true,
      status: {
        ...PENDING, phase: 'Approved', decidedBy: 'alice@example.com', decidedAt: NOW.toISOString(), reason: 'ok',
        approvals: [{ decision: 'approve', user: 'alice@example.com', groups: ['dba', 'system:authenticated'], at: NOW.toISOString(), reason: 'ok' }],
      },
    });
  });

  it('needs distinct approvers for N of M, and one deny denies', () => {
    const first = decideStatusChange(change(ALICE, PENDING, appended(PENDING, { decision: 'approve' }), 2));
    if (!first.allowed) throw new Error(first.message);
    expect(first.status.phase).toBe('Pending');
    expect(decideStatusChange(change(ALICE, first.status, appended(first.status, { decision: 'approve' }), 2)))
      .toMatchObject({ allowed: false, message: expect.stringMatching(/already decided .* distinct approvers/) });
    const denied = decideStatusChange(change(BOB, first.status, appended(first.status, { decision: 'deny', reason: 'no' }), 2));
    expect(denied).toMatchObject({ allowed: true, status: { phase: 'Denied', decidedBy: 'bob@example.com', reason: 'no' } });
    const second = decideStatusChange(change(BOB, first.status, appended(first.status, { decision: 'approve' }), 2));
    expect(second).toMatchObject({ allowed: true, status: { phase: 'Approved', decidedBy: 'alice@example.com,bob@example.com' } });
  });

  it('admits approvers by user name as well as by group', () => {
    const pager = { username: 'pager@example.com', groups: [] };
    expect(decideStatusChange(change(pager, PENDING, appended(PENDING, { decision: 'approve' })))).toMatchObject({ allowed: true, status: { phase: 'Approved' } });
  });

  it('refuses self-approval, non-approvers, edits of earlier decisions, hand-set phases and late decisions', () => {
    const requester = { username: 'system:serviceaccount:payments:app', groups: ['dba'] };
    expect(decideStatusChange(change(requester, PENDING, appended(PENDING, { decision: 'approve' })))).toMatchObject({ allowed: false, message: expect.stringMatching(/made this request and may not decide it/) });
    expect(decideStatusChange(change(MALLORY, PENDING, appended(PENDING, { decision: 'approve' }))))
      .toMatchObject({ allowed: false, message: 'mallory@example.com may not decide AccessRequest app-x1: its approvers are users pager@example.com or groups dba' });
    const once: Status = { ...PENDING, approvals: [{ decision: 'approve', user: 'alice@example.com', at: NOW.toISOString() }] };
    const rewritten: Status = { ...PENDING, approvals: [{ decision: 'deny', user: 'alice@example.com' }, { decision: 'approve' }] };
    expect(decideStatusChange(change(BOB, once, rewritten, 2))).toMatchObject({ allowed: false, message: expect.stringMatching(/append exactly one decision/) });
    expect(decideStatusChange(change(ALICE, PENDING, { ...PENDING, phase: 'Approved' }))).toMatchObject({ allowed: false, message: expect.stringMatching(/the phase follows from status.approvals/) });
    const expired = { ...PENDING, expiresAt: '2026-11-22T11:59:59.000Z' };
    expect(decideStatusChange(change(ALICE, expired, appended(expired, { decision: 'approve' })))).toMatchObject({ allowed: false, message: expect.stringMatching(/expired at/) });
    const decided: Status = { ...PENDING, phase: 'Denied', decidedBy: 'bob@example.com' };
    expect(decideStatusChange(change(ALICE, decided, appended(decided, { decision: 'approve' })))).toMatchObject({ allowed: false, message: expect.stringMatching(/already decided \(Denied\)/) });
  });

  it('fails closed when the rule lists no approvers', () => {
    const old = request(PENDING);
    const next = request(appended(PENDING, { decision: 'approve' }));
    const noApprovers = (object: AccessRequest): AccessRequest => ({ ...object, spec: { ...object.spec, approvers: {} } });
    expect(decideStatusChange({ user: ALICE, oldObject: noApprovers(old), object: noApprovers(next), operatorUsers: [OPERATOR], now: NOW }))
      .toMatchObject({ allowed: false, message: expect.stringMatching(/its approvers are nobody/) });
  });

  it('lets only the operator expire a pending request', () => {
    const expired: Status = { ...PENDING, phase: 'Expired', reason: 'no decision within 300s' };
    expect(decideStatusChange(change({ username: OPERATOR, groups: [] }, PENDING, expired)))
      .toEqual({ allowed: true, status: { ...PENDING, phase: 'Expired', decidedAt: NOW.toISOString(), reason: 'no decision within 300s' } });
    expect(decideStatusChange(change(ALICE, PENDING, expired))).toMatchObject({ allowed: false, message: expect.stringMatching(/only the Gatehouse operator expires/) });
  });
});
