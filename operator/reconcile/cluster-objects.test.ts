// cachedPod against the functions that read cached pods: whatever a pod looks like, they answer the
// same for the cached copy as for the pod the API server sent, and the copy is a small part of it.
import type { NonHumanIdentity } from '../../api/kinds/kinds.js';
import { carriesSidecar, identityOfPod, nodeIdOfPod, serviceAccountOf } from '../cluster-control-plane/sidecar-pods.js';
import { INJECTED_ANNOTATION, INJECTED_LABEL, IDENTITY_ANNOTATION } from '../admission/pod-injection.js';
import type { KubeObject } from '../kube/kube-client.js';
import { cachedPod, cachedSecret, decodeSecret, isDeleting, keyOf, type KubePod, type KubeSecret } from './cluster-objects.js';

/** A pod as a real API server serves an injected one: defaults, managedFields, status, someone else's annotations. */
function servedPod(variant: { injected?: string; phase?: string; serviceAccount?: string; deleting?: boolean; namespace?: string; uid?: string }): KubeObject {
  const annotations: Record<string, string> = {
    'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ spec: { containers: [{ name: 'app', image: 'app:1' }] } }).repeat(20),
    [IDENTITY_ANNOTATION]: 'ci-runner',
    'sidecar.gatehouse.dev/extra': 'kept',
  };
  if (variant.injected !== undefined) annotations[INJECTED_ANNOTATION] = variant.injected;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-7d9f-abcde',
      ...(variant.namespace !== undefined ? { namespace: variant.namespace } : {}),
      uid: variant.uid ?? '6f1c2d1e-0000-4000-8000-000000000001',
      resourceVersion: '4711',
      generation: 1,
      creationTimestamp: '2026-11-22T23:00:00Z',
      labels: { app: 'web', 'pod-template-hash': '7d9f', [INJECTED_LABEL]: 'true' },
      annotations,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f', uid: 'x', controller: true }],
      managedFields: Array.from({ length: 4 }, (_, index) => ({ manager: `m${index}`, operation: 'Update', fieldsV1: { 'f:spec': { 'f:containers': { 'k:{"name":"app"}': {} } } } })),
      ...(variant.deleting ? { deletionTimestamp: '2026-11-22T23:05:00Z', finalizers: ['example.com/hold'] } : {}),
    },
    spec: {
      ...(variant.serviceAccount !== undefined ? { serviceAccountName: variant.serviceAccount } : {}),
      containers: [{ name: 'app', image: 'app:1', env: Array.from({ length: 20 }, (_, index) => ({ name: `VAR_${index}`, value: 'x'.repeat(40) })) }],
      initContainers: [{ name: 'gatehouse-sidecar', image: 'gatehouse/sidecar:0.1.0', restartPolicy: 'Always' }],
      volumes: [{ name: 'gatehouse-token', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'gatehouse' } }] } }],
      nodeName: 'node-1',
    },
    status: {
      ...(variant.phase !== undefined ? { phase: variant.phase } : {}),
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-22T23:01:00Z' }],
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'app:1', imageID: 'sha256:abc', containerID: 'containerd://abc' }],
      podIP: '10.0.0.7',
    },
  };
}

const identities = ['ci-runner', 'default', 'other'].map((serviceAccountName) => ({
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'NonHumanIdentity',
  metadata: { name: `id-${serviceAccountName}`, namespace: 'payments' },
  spec: { serviceAccountName },
})) as unknown as NonHumanIdentity[];

/** Every answer the operator derives from a cached pod (sidecar-pods.ts, and operator.ts's servedDifferently: uid). */
function readings(pod: KubePod): unknown[] {
  return [carriesSidecar(pod), nodeIdOfPod(pod), serviceAccountOf(pod), identityOfPod(pod, identities)?.metadata.name, pod.metadata.uid, isDeleting(pod), keyOf(pod), pod.metadata.resourceVersion];
}

const variants = [
  {},
  { injected: 'true', phase: 'Running', serviceAccount: 'ci-runner', namespace: 'payments' },
  { injected: 'true', phase: 'Succeeded', serviceAccount: 'ci-runner', namespace: 'payments' },
  { injected: 'true', phase: 'Failed', namespace: 'payments' },
  { injected: 'false', phase: 'Pending', serviceAccount: 'other', namespace: 'payments' },
  { injected: 'true', serviceAccount: 'default', namespace: 'payments', deleting: true, uid: 'another-uid' },
  { injected: 'true', phase: 'Running', serviceAccount: 'ci-runner', namespace: 'elsewhere' },
];

describe('cachedPod', () => {
  test.each(variants)('every reader answers the same for the cached copy (%j)', (variant) => {
    const served = servedPod(variant);
    expect(readings(cachedPod(served))).toEqual(readings(served as unknown as KubePod));
  });

  test('keeps identity, version, deletion state, our labels and annotations, the ServiceAccount and the phase', () => {
    const cached = cachedPod(servedPod({ injected: 'true', phase: 'Running', serviceAccount: 'ci-runner', namespace: 'payments', deleting: true }));
    expect(cached).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-7d9f-abcde',
        namespace: 'payments',
        uid: '6f1c2d1e-0000-4000-8000-000000000001',
        resourceVersion: '4711',
        generation: 1,
        deletionTimestamp: '2026-11-22T23:05:00Z',
        finalizers: ['example.com/hold'],
        labels: { [INJECTED_LABEL]: 'true' },
        annotations: { [INJECTED_ANNOTATION]: 'true', [IDENTITY_ANNOTATION]: 'ci-runner', 'sidecar.gatehouse.dev/extra': 'kept' },
      },
      spec: { serviceAccountName: 'ci-runner' },
      status: { phase: 'Running' },
    });
  });

  test('is a fraction of the served pod, and leaves the served pod as it was', () => {
    const served = servedPod({ injected: 'true', phase: 'Running', serviceAccount: 'ci-runner', namespace: 'payments' });
    const before = JSON.stringify(served);
    const cached = cachedPod(served);
    expect(JSON.stringify(served)).toBe(before);
    expect(JSON.stringify(cached).length).toBeLessThan(before.length / 10);
  });

  test('absent parts stay absent; fields of the wrong type are not kept', () => {
    expect(cachedPod({ metadata: { name: 'bare' } })).toEqual({ metadata: { name: 'bare' } });
    const odd = cachedPod({ metadata: { name: 'odd', labels: { app: 'x' } }, spec: { serviceAccountName: 7 }, status: { phase: ['Running'] } });
    expect(odd).toEqual({ metadata: { name: 'odd', labels: {} }, spec: {}, status: {} });
    expect(serviceAccountOf(odd)).toBe('default');
  });
});

describe('cachedSecret', () => {
  const base64 = (text: string) => Buffer.from(text).toString('base64');
  function secret(type: string | undefined, data: Record<string, string>): KubeObject {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's', namespace: 'payments', resourceVersion: '7', uid: 'u-1', managedFields: [{ manager: 'helm' }] } as KubeObject['metadata'],
      ...(type === undefined ? {} : { type }),
      data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, base64(value)])),
    };
  }

  test.each([undefined, 'Opaque', 'kubernetes.io/basic-auth', 'kubernetes.io/tls'])('keeps the data of a %s Secret (credentials, CAs), without managedFields', (type) => {
    const served = secret(type, { username: 'app', password: 'pw' });
    const cached = cachedSecret(served);
    expect(decodeSecret(cached as KubeSecret).data).toEqual({ username: 'app', password: 'pw' });
    expect(cached.metadata).toEqual({ name: 's', namespace: 'payments', resourceVersion: '7', uid: 'u-1' });
    expect((served.metadata as { managedFields?: unknown }).managedFields).toBeDefined();
  });

  test.each(['helm.sh/release.v1', 'kubernetes.io/service-account-token', 'kubernetes.io/dockerconfigjson'])('drops the data of a %s Secret: naming it finds no keys', (type) => {
    const cached = cachedSecret(secret(type, { release: 'H4sIA'.repeat(10_000), username: 'app', password: 'pw' }));
    expect(decodeSecret(cached as KubeSecret).data).toEqual({});
    expect(cached).toEqual({ apiVersion: 'v1', kind: 'Secret', type, metadata: { name: 's', namespace: 'payments', resourceVersion: '7', uid: 'u-1' } });
  });
});
