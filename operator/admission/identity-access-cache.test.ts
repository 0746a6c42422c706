// The injection webhook's per-(namespace, ServiceAccount) answers: computed once, shared, and
// recomputed after their namespace (or everything) is invalidated, never served from another namespace.
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { IdentityAccessCache, type IdentityAccess } from './identity-access-cache.js';

function resource(name: string, namespace: string): ProtectedResource {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ProtectedResource',
    metadata: { name, namespace },
    spec: { protocol: 'tcp', address: `${name}.${namespace}.svc:5432`, credentials: { strategy: 'none' }, sidecar: { port: 15432 } },
  } as ProtectedResource;
}

/** A model of the stores: identity and resources per namespace/ServiceAccount, editable by the test. */
function world(): { access: Map<string, IdentityAccess>; calls: string[]; cache: IdentityAccessCache } {
  const access = new Map<string, IdentityAccess>();
  const calls: string[] = [];
  const cache = new IdentityAccessCache((namespace, serviceAccount) => {
    calls.push(`${namespace}/${serviceAccount}`);
    return access.get(`${namespace}/${serviceAccount}`) ?? { resources: [] };
  });
  return { access, calls, cache };
}

describe('IdentityAccessCache', () => {
  test('computes an answer once per (namespace, ServiceAccount) and serves it until invalidated', () => {
    const { access, calls, cache } = world();
    access.set('payments/ci-runner', { identity: 'ci-runner', resources: [resource('orders-db', 'payments')] });
    const first = cache.lookup('payments', 'ci-runner');
    expect(first.identity).toBe('ci-runner');
    expect(first.resources.map((entry) => entry.metadata.name)).toEqual(['orders-db']);
    expect(cache.lookup('payments', 'ci-runner')).toBe(first);
    expect(cache.lookup('payments', 'default')).toEqual({ resources: [] });
    expect(calls).toEqual(['payments/ci-runner', 'payments/default']);
    expect(cache.size).toBe(2);
  });

  test('invalidating a namespace recomputes its answers with what changed, and only its answers', () => {
    const { access, calls, cache } = world();
    cache.lookup('payments', 'ci-runner');
    cache.lookup('billing', 'ci-runner');
    access.set('payments/ci-runner', { identity: 'ci-runner', resources: [resource('orders-db', 'payments'), resource('ledger', 'payments')] });
    expect(cache.lookup('payments', 'ci-runner').identity).toBeUndefined();
    cache.invalidate('payments');
    expect(cache.lookup('payments', 'ci-runner').resources.map((entry) => entry.metadata.name)).toEqual(['orders-db', 'ledger']);
    cache.lookup('billing', 'ci-runner');
    expect(calls).toEqual(['payments/ci-runner', 'billing/ci-runner', 'payments/ci-runner']);
  });

  test('invalidating without a namespace drops every answer', () => {
    const { access, calls, cache } = world();
    cache.lookup('payments', 'ci-runner');
    cache.lookup('billing', 'ci-runner');
    access.set('billing/ci-runner', { identity: 'billing-bot', resources: [] });
    cache.invalidate();
    expect(cache.size).toBe(0);
    expect(cache.lookup('billing', 'ci-runner').identity).toBe('billing-bot');
    expect(calls).toEqual(['payments/ci-runner', 'billing/ci-runner', 'billing/ci-runner']);
  });

  test('a shared answer cannot be edited by one admission for the next', () => {
    const { access, cache } = world();
    const resources = [resource('orders-db', 'payments')];
    access.set('payments/ci-runner', { identity: 'ci-runner', resources });
    const answer = cache.lookup('payments', 'ci-runner');
    expect(() => (answer.resources as ProtectedResource[]).push(resource('other', 'payments'))).toThrow(TypeError);
    resources.push(resource('late', 'payments'));
    expect(cache.lookup('payments', 'ci-runner').resources).toHaveLength(1);
  });
});
