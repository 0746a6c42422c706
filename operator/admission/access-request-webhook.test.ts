// The AdmissionReview glue of the accessrequests/status webhook: what is not an AccessRequest
// status update passes unchanged, an admitted decision comes back as a patch of /status carrying
// the authenticated user, a refusal as a 403 with the reason.
import type { AccessRequest } from '../../api/kinds/kinds.js';
import type { AdmissionRequest } from './admission-review.js';
import { reviewAccessRequestStatus } from './access-request-webhook.js';

const NOW = new Date('2026-11-22T12:00:00.000Z');
const OPTIONS = { operatorUsers: ['operator'], clock: () => NOW };

function object(approvals: NonNullable<AccessRequest['status']>['approvals']): AccessRequest {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessRequest', metadata: { name: 'app-1', namespace: 'ns' },
    spec: { identity: 'app', resource: 'db', policy: 'p', statement: 'DELETE FROM t', fingerprint: 'f', requester: 'system:serviceaccount:ns:app', approvers: { groups: ['dba'] } },
    status: { phase: 'Pending', expiresAt: '2026-11-22T12:05:00.000Z', approvals },
  };
}

function review(overrides: Partial<AdmissionRequest>): AdmissionRequest {
  return {
    uid: 'u1', kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'AccessRequest' }, operation: 'UPDATE', subResource: 'status',
    userInfo: { username: 'alice', groups: ['dba'] }, oldObject: object([]), object: object([{ decision: 'approve', user: 'someone-else' }]),
    ...overrides,
  };
}

function decodedPatch(patch: string | undefined): unknown {
  return JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8'));
}

describe('reviewAccessRequestStatus', () => {
  it('patches the admitted status in, with the authenticated user as the decider', () => {
    const { response, outcome } = reviewAccessRequestStatus(review({}), OPTIONS);
    expect(outcome).toBe('patched');
    expect(response).toMatchObject({ uid: 'u1', allowed: true, patchType: 'JSONPatch' });
    expect(decodedPatch(response.patch)).toEqual([{
      op: 'replace', path: '/status', value: {
        phase: 'Approved', expiresAt: '2026-11-22T12:05:00.000Z', decidedBy: 'alice', decidedAt: NOW.toISOString(),
        approvals: [{ decision: 'approve', user: 'alice', groups: ['dba'], at: NOW.toISOString() }],
      },
    }]);
  });

  it('refuses with 403 and the reason', () => {
    const { response, outcome } = reviewAccessRequestStatus(review({ userInfo: { username: 'system:serviceaccount:ns:app', groups: ['dba'] } }), OPTIONS);
    expect(outcome).toBe('denied');
    expect(response).toMatchObject({ allowed: false, status: { code: 403, message: expect.stringMatching(/^gatehouse: system:serviceaccount:ns:app made this request/) } });
  });

  it('refuses any change of the spec, so nobody makes themselves an approver', () => {
    const old = object([]);
    const widened = { ...old, spec: { ...old.spec, approvers: { users: ['mallory'] } } };
    const { response, outcome } = reviewAccessRequestStatus(review({ subResource: undefined as never, oldObject: old, object: widened }), OPTIONS);
    expect(outcome).toBe('denied');
    expect(response.status!.message).toMatch(/the spec of an AccessRequest cannot change/);
    const labelled = { ...old, metadata: { ...old.metadata, labels: { team: 'x' } } };
    expect(reviewAccessRequestStatus(review({ subResource: undefined as never, oldObject: old, object: labelled }), OPTIONS).outcome).toBe('allowed');
  });

  it('leaves everything else alone: other kinds, creation, other subresources', () => {
    for (const other of [
      review({ kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'AccessPolicy' } }),
      review({ operation: 'CREATE' }),
      review({ subResource: 'scale' }),
    ]) {
      expect(reviewAccessRequestStatus(other, OPTIONS)).toEqual({ response: { uid: 'u1', allowed: true }, outcome: 'allowed' });
    }
  });
});
