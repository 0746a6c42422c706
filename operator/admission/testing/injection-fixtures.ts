// Pods, ProtectedResources and injection contexts for the admission tests.
import type { ProtectedResource } from '../../../api/kinds/kinds.js';
import type { InjectionContext, PodLike } from '../pod-injection.js';

export const OPERATOR_NAMESPACE = 'gatehouse-system';
export const CONTROL_PLANE_CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
/** The value of the orders-db-admin Secret in these tests: it must never appear in a patch. */
export const BACKEND_PASSWORD = 's3cr3t-backend-password';

export function postgresResource(name: string, port: number, address = `${name}.payments.svc:5432`, database = name.replace(/-db$/, '')): ProtectedResource {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ProtectedResource',
    metadata: { name, namespace: 'payments' },
    spec: {
      protocol: 'postgres',
      address,
      database,
      credentials: { strategy: 'static', secretRef: { name: `${name}-admin` } },
      sidecar: { port },
    },
  } as ProtectedResource;
}

export function httpResource(name: string, port: number, address: string): ProtectedResource {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ProtectedResource',
    metadata: { name, namespace: 'payments' },
    spec: { protocol: 'http', address, credentials: { strategy: 'jwt' }, sidecar: { port } },
  } as ProtectedResource;
}

export function injectionContext(overrides: Partial<InjectionContext> = {}): InjectionContext {
  return {
    namespace: 'payments',
    namespaceLabels: { 'gatehouse.dev/inject': 'enabled' },
    operatorNamespace: OPERATOR_NAMESPACE,
    sidecarImage: 'ghcr.io/gatehouse/sidecar:0.1.0',
    controlPlaneAddress: 'gatehouse-operator.gatehouse-system.svc:15010',
    controlPlaneCa: CONTROL_PLANE_CA,
    identity: 'ci-runner',
    resources: [postgresResource('orders-db', 15432)],
    ...overrides,
  };
}

export function appPod(overrides: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Record<string, unknown> } = {}): PodLike {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'ci-job-',
      namespace: 'payments',
      labels: { app: 'ci', ...overrides.labels },
      ...(overrides.annotations ? { annotations: overrides.annotations } : {}),
    },
    spec: {
      serviceAccountName: 'ci-runner',
      containers: [
        {
          name: 'app',
          image: 'registry.example/ci:1',
          env: [{ name: 'LOG_LEVEL', value: 'debug' }],
        },
      ],
      ...overrides.spec,
    },
  };
}
