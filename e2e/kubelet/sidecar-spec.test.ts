import type { V1Pod } from '@kubernetes/client-node';
import { buildSidecarSpec, findSidecarContainer, PodSpecError, rewriteMountPaths } from './sidecar-spec.js';
import { injectedPod, TOKEN_MOUNT_PATH } from './testdata/injected-pod.js';

const options = { volumeRoot: '/tmp/standin/volumes', adminPort: 40123, nodeName: 'node-a', podIP: '127.0.0.1' };

function podWithUid(): V1Pod {
  const pod = injectedPod({ name: 'web-1', namespace: 'payments' });
  pod.metadata = { ...pod.metadata, uid: '0f8c2a8e-1111-2222-3333-444455556666' };
  return pod;
}

describe('buildSidecarSpec', () => {
  it('resolves literal and downward-API env with Kubernetes $(VAR) expansion', () => {
    const spec = buildSidecarSpec(podWithUid(), options);
    expect(spec.env.get('POD_NAME')).toBe('web-1');
    expect(spec.env.get('POD_NAMESPACE')).toBe('payments');
    expect(spec.env.get('POD_UID')).toBe('0f8c2a8e-1111-2222-3333-444455556666');
    expect(spec.env.get('APP_LABEL')).toBe('orders');
    expect(spec.env.get('NODE_ID')).toBe('payments/web-1');
    // A reference to a variable defined later stays verbatim, as in Kubernetes.
    expect(spec.env.get('EARLY_REFERENCE')).toBe('$(LATER)');
  });

  it('assigns the admin port in place, so later references see it', () => {
    const spec = buildSidecarSpec(podWithUid(), options);
    expect(spec.env.get('GATEHOUSE_ADMIN_PORT')).toBe('40123');
    expect(spec.env.get('ADMIN_URL')).toBe('http://127.0.0.1:40123/readyz');
    expect(spec.startupProbe).toMatchObject({ path: '/readyz', port: 40123, periodMs: 1000, failureThreshold: 30 });
  });

  it('adds the admin port when the container does not set it', () => {
    const pod = podWithUid();
    const container = findSidecarContainer(pod);
    if (!container) throw new Error('fixture has no sidecar');
    container.env = container.env?.filter((variable) => variable.name !== 'GATEHOUSE_ADMIN_PORT');
    expect(buildSidecarSpec(pod, options).env.get('GATEHOUSE_ADMIN_PORT')).toBe('40123');
  });

  it('applies env overrides in place and appends the ones the pod does not set', () => {
    const spec = buildSidecarSpec(podWithUid(), { ...options, envOverrides: { LATER: 'overridden', GATEHOUSE_CONTROL_PLANE: '127.0.0.1:4443' } });
    expect(spec.env.get('LATER')).toBe('overridden');
    expect(spec.env.get('GATEHOUSE_CONTROL_PLANE')).toBe('127.0.0.1:4443');
    expect([...spec.env.keys()].at(-1)).toBe('GATEHOUSE_CONTROL_PLANE');
  });

  it('expands args against the final env and rewrites mount paths to the stand-in folder', () => {
    const spec = buildSidecarSpec(podWithUid(), options);
    expect(spec.env.get('GATEHOUSE_TOKEN_FILE')).toBe('/tmp/standin/volumes/gatehouse-token/token');
    expect(spec.args).toEqual([
      'sidecar', '--node-id', 'payments/web-1', '--literal', '$(POD_NAME)',
      '--token-file=/tmp/standin/volumes/gatehouse-token/token',
    ]);
  });

  it('lists the projected token and downward-API files', () => {
    const spec = buildSidecarSpec(podWithUid(), options);
    expect(spec.serviceAccountName).toBe('ci-runner');
    expect(spec.tokens).toEqual([{
      volumeName: 'gatehouse-token', audiences: ['gatehouse'], expirationSeconds: 600,
      containerPath: `${TOKEN_MOUNT_PATH}/token`, relativePath: 'token',
    }]);
    expect(spec.fieldFiles).toEqual([{ volumeName: 'gatehouse-token', relativePath: 'labels', content: 'app="orders"\ntier="backend"' }]);
  });

  it('fails the pod with a reason for env sources it cannot honour', () => {
    const pod = podWithUid();
    findSidecarContainer(pod)?.env?.push({ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } });
    expect(() => buildSidecarSpec(pod, options)).toThrow(PodSpecError);
    expect(() => buildSidecarSpec(pod, options)).toThrow(/secretKeyRef is not supported/);
  });

  it('rejects unknown fieldRefs and projected paths that leave the volume', () => {
    const unknownField = podWithUid();
    findSidecarContainer(unknownField)?.env?.push({ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.priority' } } });
    expect(() => buildSidecarSpec(unknownField, options)).toThrow(/spec.priority is not a downward API field/);
    const escaping = podWithUid();
    const source = escaping.spec?.volumes?.[0].projected?.sources?.[0].serviceAccountToken;
    if (source) source.path = '../../etc/token';
    expect(() => buildSidecarSpec(escaping, options)).toThrow(/must be relative and stay inside the volume/);
  });

  it('ignores pods whose gatehouse-sidecar is not a native sidecar', () => {
    const pod = podWithUid();
    const container = findSidecarContainer(pod);
    if (container) container.restartPolicy = undefined;
    expect(findSidecarContainer(pod)).toBeUndefined();
    expect(() => buildSidecarSpec(pod, options)).toThrow(/no native sidecar/);
  });
});

describe('rewriteMountPaths', () => {
  const mounts = [['/var/run/a/b', '/host/b'], ['/var/run/a', '/host/a']] as const;
  it.each([
    ['/var/run/a/b/token', '/host/b/token'],
    ['/var/run/a/token', '/host/a/token'],
    ['/var/run/a', '/host/a'],
    ['--file=/var/run/a/x', '--file=/host/a/x'],
    ['/var/run/ab/token', '/var/run/ab/token'],
    ['unrelated', 'unrelated'],
  ])('%s → %s', (input, expected) => {
    expect(rewriteMountPaths(input, mounts)).toBe(expected);
  });
});
