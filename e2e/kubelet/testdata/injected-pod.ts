// A Pod shaped like what the Gatehouse mutating webhook admits: the app container plus the native
// sidecar initContainer with downward-API env, $(VAR) references and a projected token volume.
import type { V1Pod } from '@kubernetes/client-node';

export const TOKEN_MOUNT_PATH = '/var/run/secrets/gatehouse.dev/serviceaccount';

export interface InjectedPodOptions {
  readonly name: string;
  readonly namespace: string;
  readonly image?: string;
  readonly serviceAccountName?: string;
  readonly extraEnv?: ReadonlyArray<{ name: string; value: string }>;
  readonly startupProbePath?: string;
  readonly args?: readonly string[];
}

export function injectedPod(options: InjectedPodOptions): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: options.name, namespace: options.namespace, labels: { app: 'orders', tier: 'backend' } },
    spec: {
      serviceAccountName: options.serviceAccountName ?? 'ci-runner',
      terminationGracePeriodSeconds: 5,
      containers: [{ name: 'app', image: 'example/app:1.0' }],
      initContainers: [{
        name: 'gatehouse-sidecar',
        image: options.image ?? 'ghcr.io/gatehouse/sidecar:0.1.0',
        restartPolicy: 'Always',
        args: options.args ? [...options.args] : ['sidecar', '--node-id', '$(POD_NAMESPACE)/$(POD_NAME)', '--literal', '$$(POD_NAME)', '--token-file=$(GATEHOUSE_TOKEN_FILE)'],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
          { name: 'APP_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'NODE_ID', value: '$(POD_NAMESPACE)/$(POD_NAME)' },
          { name: 'EARLY_REFERENCE', value: '$(LATER)' },
          { name: 'LATER', value: 'defined-after' },
          { name: 'GATEHOUSE_TOKEN_FILE', value: `${TOKEN_MOUNT_PATH}/token` },
          { name: 'GATEHOUSE_ADMIN_PORT', value: '15090' },
          { name: 'ADMIN_URL', value: 'http://127.0.0.1:$(GATEHOUSE_ADMIN_PORT)/readyz' },
          ...(options.extraEnv ?? []),
        ],
        startupProbe: { httpGet: { path: options.startupProbePath ?? '/readyz', port: 15090 }, periodSeconds: 1, failureThreshold: 30 },
        volumeMounts: [{ name: 'gatehouse-token', mountPath: TOKEN_MOUNT_PATH, readOnly: true }],
      }],
      volumes: [{
        name: 'gatehouse-token',
        projected: {
          sources: [
            { serviceAccountToken: { audience: 'gatehouse', expirationSeconds: 600, path: 'token' } },
            { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
          ],
        },
      }],
    },
  };
}
