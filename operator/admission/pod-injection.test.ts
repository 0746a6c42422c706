import fc from 'fast-check';
import { isGatehouseError } from '../../api/errors.js';
import type { JsonObject, JsonValue } from './json-patch.js';
import {
  DEFAULT_SIDECAR_RESOURCES,
  injectionContextOf,
  injectSidecar,
  REDIRECT_CONTAINER,
  SIDECAR_ADMIN_PORT,
  SIDECAR_CONTAINER,
  SIDECAR_UID,
  type InjectionContext,
  type PodLike,
} from './pod-injection.js';
import { applyJsonPatch } from './testing/apply-json-patch.js';
import {
  appPod,
  BACKEND_PASSWORD,
  CONTROL_PLANE_CA,
  httpResource,
  injectionContext,
  OPERATOR_NAMESPACE,
  postgresResource,
} from './testing/injection-fixtures.js';

interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  restartPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
  securityContext?: Record<string, unknown>;
  resources?: { requests: Record<string, string>; limits: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  startupProbe?: { httpGet: { path: string; port: number } };
  readinessProbe?: { httpGet: { path: string; port: number } };
}

interface InjectedPod {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: { name: string; projected?: unknown }[] };
}

/** Injects, applies the patch to the original with an independent RFC 6902 applier, and returns both. */
function injectAndApply(pod: PodLike, context: InjectionContext = injectionContext()) {
  const result = injectSidecar(pod, context);
  const patched = applyJsonPatch(pod as JsonValue, result.patch) as unknown as InjectedPod;
  return { result, patched };
}

function envOf(container: Container): Record<string, string | undefined> {
  return Object.fromEntries((container.env ?? []).map((variable) => [variable.name, variable.value]));
}

function expectSkipped(pod: PodLike, context: InjectionContext, reason: RegExp): void {
  const result = injectSidecar(pod, context);
  expect(result.patch).toEqual([]);
  expect(result.injected).toBe(false);
  expect(result.reason).toMatch(reason);
}

describe('injectionContextOf', () => {
  test('gives every context the same properties in the same order, whichever optional ones are set', () => {
    const base = { namespace: 'payments', namespaceLabels: {}, operatorNamespace: 'gatehouse-system', sidecarImage: 'sidecar:1', controlPlaneAddress: 'cp:15010', controlPlaneCa: 'ca', resources: [] };
    const bare = injectionContextOf(base);
    const full = injectionContextOf({ sidecarResources: DEFAULT_SIDECAR_RESOURCES, identity: 'ci-runner', ...base });
    expect(Object.keys(full)).toEqual(Object.keys(bare));
    expect(full).toMatchObject({ ...base, identity: 'ci-runner', sidecarResources: DEFAULT_SIDECAR_RESOURCES });
    expect(bare.identity).toBeUndefined();
  });
});

describe('injectSidecar: who gets a sidecar', () => {
  it('injects when the namespace opts in', () => {
    expect(injectSidecar(appPod(), injectionContext()).injected).toBe(true);
  });

  it('injects when the pod opts in although its namespace does not', () => {
    const context = injectionContext({ namespaceLabels: {} });
    expect(injectSidecar(appPod({ labels: { 'gatehouse.dev/inject': 'enabled' } }), context).injected).toBe(true);
  });

  it('skips a pod when neither it nor its namespace opts in', () => {
    expectSkipped(appPod(), injectionContext({ namespaceLabels: { 'gatehouse.dev/inject': 'disabled' } }), /neither namespace payments nor the pod/);
  });

  it('lets a pod opt out by label or by annotation in an opted-in namespace', () => {
    expectSkipped(appPod({ labels: { 'gatehouse.dev/inject': 'disabled' } }), injectionContext(), /opts out/);
    expectSkipped(appPod({ annotations: { 'gatehouse.dev/inject': 'disabled' } }), injectionContext(), /opts out/);
  });

  it('skips hostNetwork pods', () => {
    expectSkipped(appPod({ spec: { hostNetwork: true } }), injectionContext(), /host network/);
  });

  it("skips the operator's own namespace even when it is labelled", () => {
    const context = injectionContext({ namespace: OPERATOR_NAMESPACE });
    expectSkipped(appPod({ labels: { 'gatehouse.dev/inject': 'enabled' } }), context, /operator's own/);
  });

  it('skips a pod whose ServiceAccount no NonHumanIdentity claims', () => {
    const { identity: _none, ...context } = injectionContext();
    expectSkipped(appPod(), context, /no NonHumanIdentity claims ServiceAccount ci-runner/);
  });

  it('is idempotent: injecting the injected pod again yields an empty patch', () => {
    const { patched } = injectAndApply(appPod());
    expectSkipped(patched as unknown as PodLike, injectionContext(), /already injected/);
  });

  it('injects again when the annotation claims injection but the sidecar container is missing', () => {
    const pod = appPod({ annotations: { 'gatehouse.dev/injected': 'true' } });
    expect(injectSidecar(pod, injectionContext()).injected).toBe(true);
  });
});

describe('injectSidecar: what is injected', () => {
  it('adds a native sidecar first among the init containers, with token, probes and hardened context', () => {
    const pod = appPod({ spec: { initContainers: [{ name: 'migrate', image: 'registry.example/migrate:1' }] } });
    const { result, patched } = injectAndApply(pod);
    expect(result.reason).toMatch(/identity ci-runner \(explicit mode; resources: orders-db\)/);
    const [sidecar, migrate] = patched.spec.initContainers!;
    expect(migrate!.name).toBe('migrate');
    expect(sidecar).toMatchObject({
      name: SIDECAR_CONTAINER,
      image: 'ghcr.io/gatehouse/sidecar:0.1.0',
      args: ['sidecar'],
      restartPolicy: 'Always',
      startupProbe: { httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT } },
      readinessProbe: { httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT } },
      volumeMounts: [
        { name: 'gatehouse-token', mountPath: '/var/run/secrets/gatehouse', readOnly: true },
        { name: 'gatehouse-spool', mountPath: '/var/run/gatehouse/spool' },
      ],
      securityContext: {
        runAsNonRoot: true,
        runAsUser: SIDECAR_UID,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
    });
    const env = envOf(sidecar!);
    expect(env.GATEHOUSE_CONTROL_PLANE).toBe('gatehouse-operator.gatehouse-system.svc:15010');
    expect(env.GATEHOUSE_CONTROL_PLANE_CA).toBe(CONTROL_PLANE_CA);
    expect(env.GATEHOUSE_TOKEN_FILE).toBe('/var/run/secrets/gatehouse/token');
    expect(env.GATEHOUSE_RECORDING_SPOOL).toBe('/var/run/gatehouse/spool');
    const fieldRefs = Object.fromEntries(sidecar!.env!.filter((v) => v.valueFrom).map((v) => [v.name, v.valueFrom!.fieldRef.fieldPath]));
    expect(fieldRefs).toEqual({ POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace' });
    expect(patched.spec.volumes).toEqual([
      {
        name: 'gatehouse-token',
        projected: { sources: [{ serviceAccountToken: { audience: 'gatehouse', expirationSeconds: 600, path: 'token' } }] },
      },
      // The recording spool: writable although the root filesystem is not, bounded above the spool's own limit.
      { name: 'gatehouse-spool', emptyDir: { sizeLimit: '512Mi' } },
    ]);
    expect(patched.metadata.annotations).toEqual({ 'gatehouse.dev/injected': 'true', 'gatehouse.dev/identity': 'ci-runner' });
  });

  it('mounts the token only into the sidecar, never into app containers', () => {
    const { patched } = injectAndApply(appPod());
    expect(patched.spec.containers[0]!.volumeMounts).toBeUndefined();
  });

  it('points app containers and later init containers at the sidecar for a single postgres resource', () => {
    const pod = appPod({ spec: { initContainers: [{ name: 'migrate', image: 'm:1' }] } });
    const { patched } = injectAndApply(pod);
    for (const container of [patched.spec.containers[0]!, patched.spec.initContainers![1]!]) {
      expect(envOf(container)).toMatchObject({
        PGHOST: '127.0.0.1',
        PGPORT: '15432',
        PGSSLMODE: 'disable',
        DATABASE_URL: 'postgres://127.0.0.1:15432/orders',
        GATEHOUSE_ORDERS_DB_URL: 'postgres://127.0.0.1:15432/orders',
      });
    }
    expect(envOf(patched.spec.containers[0]!).LOG_LEVEL).toBe('debug');
  });

  it('gives one URL per resource and no PG* variables when several postgres resources are reachable', () => {
    const context = injectionContext({
      resources: [postgresResource('orders-db', 15432), postgresResource('reports-db', 15433), httpResource('billing-api', 18080, 'https://billing.payments.svc:8443')],
    });
    const env = envOf(injectAndApply(appPod(), context).patched.spec.containers[0]!);
    expect(env).toMatchObject({
      GATEHOUSE_ORDERS_DB_URL: 'postgres://127.0.0.1:15432/orders',
      GATEHOUSE_REPORTS_DB_URL: 'postgres://127.0.0.1:15433/reports',
      GATEHOUSE_BILLING_API_URL: 'http://127.0.0.1:18080',
    });
    for (const name of ['PGHOST', 'PGPORT', 'DATABASE_URL']) expect(env[name]).toBeUndefined();
  });

  it('keeps env values the pod sets itself', () => {
    const pod = appPod({ spec: { containers: [{ name: 'app', image: 'a:1', env: [{ name: 'PGPORT', value: '6543' }] }] } });
    const env = envOf(injectAndApply(pod).patched.spec.containers[0]!);
    expect(env.PGPORT).toBe('6543');
    expect(env.PGHOST).toBe('127.0.0.1');
  });

  it('never puts a credential into any env, file or annotation it adds', () => {
    const context = injectionContext({
      resources: [postgresResource('orders-db', 15432), httpResource('billing-api', 18080, 'http://billing.payments.svc:8080')],
    });
    for (const pod of [appPod(), appPod({ annotations: { 'gatehouse.dev/transparent': 'true' } })]) {
      const { result } = injectAndApply(pod, context);
      const text = JSON.stringify(result.patch);
      expect(text).not.toContain(BACKEND_PASSWORD);
      expect(text).not.toMatch(/PGPASSWORD|PGUSER|password|secretKeyRef|secretRef/i);
      // No URL carries user info (user:pass@).
      expect(text).not.toMatch(/:\/\/[^"/]*@/);
    }
  });
});

describe('injectSidecar: per-pod overrides', () => {
  it('takes the image, CPU and memory from annotations', () => {
    const pod = appPod({
      annotations: {
        'gatehouse.dev/sidecar-image': 'registry.example/gatehouse/sidecar:canary',
        'gatehouse.dev/sidecar-cpu': '250m',
        'gatehouse.dev/sidecar-memory': '128Mi',
      },
    });
    const sidecar = injectAndApply(pod).patched.spec.initContainers![0]!;
    expect(sidecar.image).toBe('registry.example/gatehouse/sidecar:canary');
    expect(sidecar.resources).toEqual({ requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '250m', memory: '128Mi' } });
  });

  it.each([
    ['gatehouse.dev/sidecar-cpu', 'lots'],
    ['gatehouse.dev/sidecar-memory', '12 Mi'],
    ['gatehouse.dev/sidecar-image', 'img; rm -rf /'],
    ['gatehouse.dev/transparent', 'yes'],
  ])('refuses an invalid %s annotation with a clear error', (annotation, value) => {
    try {
      injectSidecar(appPod({ annotations: { [annotation]: value } }), injectionContext());
      throw new Error('expected a GatehouseError');
    } catch (error) {
      expect(isGatehouseError(error, 'GH_ERR_ADMISSION_ANNOTATION')).toBe(true);
      expect((error as Error).message).toContain(annotation);
    }
  });
});

describe('injectSidecar: transparent mode', () => {
  const context = injectionContext({
    resources: [postgresResource('orders-db', 15432), postgresResource('legacy-db', 15433, '10.20.0.7:5432')],
  });

  it('adds the redirect init container before the sidecar with NET_ADMIN/NET_RAW only', () => {
    const pod = appPod({ annotations: { 'gatehouse.dev/transparent': 'true' } });
    const { result, patched } = injectAndApply(pod, context);
    expect(result.reason).toMatch(/transparent mode/);
    const [redirect, sidecar] = patched.spec.initContainers!;
    expect(redirect!.name).toBe(REDIRECT_CONTAINER);
    expect(sidecar!.name).toBe(SIDECAR_CONTAINER);
    expect(redirect!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
    });
    const script = redirect!.command![2]!;
    expect(script).toContain('-d 10.20.0.7/32 --dport 5432 -j REDIRECT --to-ports 15433');
    expect(script).toContain('--dport 5432 -j REDIRECT --to-ports 15432');
    expect(script).toContain(`--uid-owner ${SIDECAR_UID} -j RETURN`);
  });

  it('refuses to confine an app container running as the sidecar uid or with NET_ADMIN', () => {
    const asSidecar = appPod({ annotations: { 'gatehouse.dev/transparent': 'true' }, spec: { securityContext: { runAsUser: SIDECAR_UID } } });
    expect(() => injectSidecar(asSidecar, context)).toThrow(/runs as uid 15532/);
    const netAdmin = appPod({
      annotations: { 'gatehouse.dev/transparent': 'true' },
      spec: { containers: [{ name: 'app', image: 'a:1', securityContext: { capabilities: { add: ['NET_ADMIN'] } } }] },
    });
    expect(() => injectSidecar(netAdmin, context)).toThrow(/NET_ADMIN/);
  });

  it('adds no redirect container when the identity reaches no resource', () => {
    const pod = appPod({ annotations: { 'gatehouse.dev/transparent': 'true' } });
    const { patched } = injectAndApply(pod, injectionContext({ resources: [] }));
    expect(patched.spec.initContainers!.map((container) => container.name)).toEqual([SIDECAR_CONTAINER]);
  });
});

describe('injectSidecar: the patch', () => {
  it('touches only what injection adds, and applies to the raw original', () => {
    const pod = appPod({ annotations: { team: 'payments' }, spec: { volumes: [{ name: 'cache', emptyDir: {} }] } });
    const { result, patched } = injectAndApply(pod);
    const paths = result.patch.map((operation) => `${operation.op} ${operation.path}`).sort();
    expect(paths).toEqual([
      'add /metadata/annotations/gatehouse.dev~1identity',
      'add /metadata/annotations/gatehouse.dev~1injected',
      'add /metadata/labels/gatehouse.dev~1injected',
      'add /spec/containers/0/env/1',
      'add /spec/containers/0/env/2',
      'add /spec/containers/0/env/3',
      'add /spec/containers/0/env/4',
      'add /spec/containers/0/env/5',
      'add /spec/initContainers',
      'add /spec/volumes/1',
      'add /spec/volumes/2',
    ]);
    // Everything that was in the pod is still there, unchanged.
    expect(patched.metadata.annotations!.team).toBe('payments');
    expect((patched.spec.volumes![0] as JsonObject).name).toBe('cache');
  });
});

describe('injectSidecar: the patch against any pod (property)', () => {
  const variable = fc.record({ name: fc.constantFrom('PGHOST', 'DATABASE_URL', 'LOG_LEVEL', 'A/B', 'T~1'), value: fc.constantFrom('x', '127.0.0.9', '') });
  const container = (prefix: string) => fc.record({
    name: fc.constantFrom(`${prefix}-a`, `${prefix}-b`, `${prefix}-c`),
    image: fc.constant('example/app:1.0'),
    env: fc.option(fc.uniqueArray(variable, { selector: (entry) => entry.name, maxLength: 4 }), { nil: undefined }),
  }, { requiredKeys: ['name', 'image'] });
  const pod = fc.record({
    metadata: fc.record({
      name: fc.constant('p'),
      labels: fc.option(fc.dictionary(fc.constantFrom('app', 'team', 'gatehouse.dev/injected'), fc.constantFrom('x', 'false')), { nil: undefined }),
      annotations: fc.option(fc.dictionary(fc.constantFrom('team', 'example.com/owner', 'a~b', 'gatehouse.dev/identity'), fc.constantFrom('1', 'stale')), { nil: undefined }),
    }, { requiredKeys: ['name'] }),
    spec: fc.record({
      serviceAccountName: fc.constant('ci-runner'),
      containers: fc.array(container('app'), { minLength: 1, maxLength: 3 }),
      initContainers: fc.option(fc.array(container('init'), { maxLength: 2 }), { nil: undefined }),
      volumes: fc.option(fc.array(fc.record({ name: fc.constantFrom('cache', 'data'), emptyDir: fc.constant({}) }), { maxLength: 2 }), { nil: undefined }),
    }, { requiredKeys: ['serviceAccountName', 'containers'] }),
  });
  const transparent = fc.boolean();

  it('applies cleanly and adds only the sidecar, its volumes, the client env, the label and the annotations', () => {
    fc.assert(fc.property(pod, transparent, (generated, redirect) => {
      const original = JSON.parse(JSON.stringify(generated)) as PodLike & InjectedPod;
      if (redirect) original.metadata.annotations = { ...original.metadata.annotations, 'gatehouse.dev/transparent': 'true' };
      const before = JSON.parse(JSON.stringify(original)) as InjectedPod;
      const { patched } = injectAndApply(original);
      expect(original).toEqual(before); // the raw original is left alone
      const injectedNames = redirect ? [REDIRECT_CONTAINER, SIDECAR_CONTAINER] : [SIDECAR_CONTAINER];
      const init = patched.spec.initContainers ?? [];
      expect(init.map((entry) => entry.name)).toEqual([...injectedNames, ...(before.spec.initContainers ?? []).map((entry) => entry.name)]);
      const appContainers = [...patched.spec.containers, ...init.slice(injectedNames.length)];
      const originals = [...before.spec.containers, ...(before.spec.initContainers ?? [])];
      appContainers.forEach((entry, index) => {
        const own = originals[index]!;
        // The container's own variables come first, unchanged; each client variable appears once, the pod's value winning.
        expect((entry.env ?? []).slice(0, own.env?.length ?? 0)).toEqual(own.env ?? []);
        for (const name of ['PGHOST', 'PGPORT', 'DATABASE_URL']) expect((entry.env ?? []).filter((item) => item.name === name)).toHaveLength(1);
        expect(envOf(entry).PGHOST).toBe(envOf(own).PGHOST ?? '127.0.0.1');
        expect({ ...entry, env: undefined }).toEqual({ ...own, env: undefined });
      });
      const volumes = patched.spec.volumes ?? [];
      expect(volumes.slice(0, before.spec.volumes?.length ?? 0)).toEqual(before.spec.volumes ?? []);
      expect(volumes.slice(before.spec.volumes?.length ?? 0).map((entry) => entry.name)).toEqual(
        redirect ? ['gatehouse-token', 'gatehouse-spool', 'gatehouse-xtables'] : ['gatehouse-token', 'gatehouse-spool']);
      expect(patched.metadata.annotations).toEqual({ ...before.metadata.annotations, 'gatehouse.dev/injected': 'true', 'gatehouse.dev/identity': 'ci-runner' });
      // The label the operator's pod watch selects on.
      expect(patched.metadata.labels).toEqual({ ...before.metadata.labels, 'gatehouse.dev/injected': 'true' });
    }), { numRuns: 300 });
  });
});
