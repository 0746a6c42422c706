// Builders for the objects the credential tests need (identity, resource, policy, Secret), so each
// test states only what matters to it. Test support only.
import type { AccessPolicy, NonHumanIdentity, PolicyRuleT, ProtectedResource } from '../../api/kinds/kinds.js';
import { GROUP_VERSION } from '../../api/kinds/kinds.js';
import type { Secret } from '../../api/manifests/config.js';

export const NAMESPACE = 'payments';

export function identity(name: string, spec: Partial<NonHumanIdentity['spec']> = {}): NonHumanIdentity {
  return {
    apiVersion: GROUP_VERSION,
    kind: 'NonHumanIdentity',
    metadata: { name, namespace: NAMESPACE },
    spec: { serviceAccountName: name, ...spec },
  };
}

export function resource(name: string, spec: Partial<ProtectedResource['spec']> = {}): ProtectedResource {
  return {
    apiVersion: GROUP_VERSION,
    kind: 'ProtectedResource',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      protocol: 'postgres',
      address: '127.0.0.1:5432',
      database: 'app',
      tls: { mode: 'disable' },
      credentials: { strategy: 'postgres-dynamic', secretRef: { name: `${name}-admin` } },
      sidecar: { port: 15432 },
      ...spec,
    },
  };
}

export function policy(
  name: string,
  subjects: readonly string[],
  resources: readonly string[],
  rules: readonly PolicyRuleT[],
  extra: Partial<AccessPolicy['spec']> = {},
): AccessPolicy {
  return {
    apiVersion: GROUP_VERSION,
    kind: 'AccessPolicy',
    metadata: { name, namespace: NAMESPACE },
    spec: { subjects: subjects.map((subject) => ({ identity: subject })), resources: [...resources], rules: [...rules], ...extra },
  };
}

export function secret(name: string, data: Record<string, string>): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NAMESPACE }, data };
}
