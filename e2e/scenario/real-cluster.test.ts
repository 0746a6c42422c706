// The real-cluster driver's parts that can be checked without a real cluster: its settings from env,
// the Helm values and install command (run against the loopback API server), the recordings patch,
// the PostgreSQL manifest (server-side dry run), and the kubectl command lines (parsed by the real kubectl).
// The driver itself has not run against a real cluster here: no Docker engine or kind on this machine.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startTestCluster, type TestCluster } from '../harness/test-cluster.js';
import {
  appPsqlArgs, chartImage, cleanupCommands, databaseSqlArgs, helmInstallArgs, helmValues, helmValuesYaml, OPERATOR_DEPLOYMENT,
  podProxyArgs, POSTGRES_MANIFEST, postgresSecretManifest, realClusterConfig, RECORDINGS_DIR, releaseNamespaceManifest,
  type RealClusterConfig,
} from './real-cluster.js';
import { workloadNamespaceManifest } from './scenario-cluster.js';

const IMAGES = { GATEHOUSE_E2E_OPERATOR_IMAGE: 'gatehouse/operator:e2e', GATEHOUSE_E2E_SIDECAR_IMAGE: 'gatehouse/sidecar:e2e' };

describe('realClusterConfig', () => {
  it('reads the kubeconfig and images, and names namespaces unique to the run', () => {
    const config = realClusterConfig({ KUBECONFIG: '/tmp/kind.yaml', ...IMAGES }, '1a2b3c4d');
    expect(config).toEqual({
      kubeconfigPath: '/tmp/kind.yaml', operatorImage: 'gatehouse/operator:e2e', sidecarImage: 'gatehouse/sidecar:e2e',
      namespace: 'gatehouse-e2e-1a2b3c4d', releaseNamespace: 'gatehouse-e2e-1a2b3c4d-system', keep: false,
    });
    expect(realClusterConfig({ KUBECONFIG: '/tmp/kind.yaml', ...IMAGES, GATEHOUSE_E2E_KEEP: '1' }).keep).toBe(true);
    const first = realClusterConfig({ KUBECONFIG: '/tmp/kind.yaml', ...IMAGES });
    const second = realClusterConfig({ KUBECONFIG: '/tmp/kind.yaml', ...IMAGES });
    expect(first.namespace).toMatch(/^gatehouse-e2e-[0-9a-f]{8}$/);
    expect(second.namespace).not.toBe(first.namespace);
  });

  it('refuses to install anything without both images named, with a tag kind can use', () => {
    const attempt = (env: NodeJS.ProcessEnv) => () => realClusterConfig({ KUBECONFIG: '/tmp/kind.yaml', ...env });
    expect(attempt({ GATEHOUSE_E2E_SIDECAR_IMAGE: 'gatehouse/sidecar:e2e' })).toThrow(expect.objectContaining({ code: 'GH_ERR_E2E_CLUSTER_CONFIG', message: expect.stringContaining('GATEHOUSE_E2E_OPERATOR_IMAGE is not set') }));
    expect(attempt({ GATEHOUSE_E2E_OPERATOR_IMAGE: 'gatehouse/operator:e2e' })).toThrow(/GATEHOUSE_E2E_SIDECAR_IMAGE is not set.*GATEHOUSE_E2E_LOOPBACK=1/);
    expect(attempt({ ...IMAGES, GATEHOUSE_E2E_SIDECAR_IMAGE: 'gatehouse/sidecar' })).toThrow(/needs a tag other than latest/);
    expect(attempt({ ...IMAGES, GATEHOUSE_E2E_SIDECAR_IMAGE: 'localhost:5000/gatehouse/sidecar:latest' })).toThrow(/needs a tag other than latest/);
    expect(attempt({ ...IMAGES, GATEHOUSE_E2E_OPERATOR_IMAGE: 'gatehouse/operator:e2e; rm -rf /' })).toThrow(/is not an image reference/);
    expect(() => realClusterConfig({ ...IMAGES })).toThrow(/KUBECONFIG is not set/);
    expect(() => realClusterConfig({ KUBECONFIG: '/a:/b', ...IMAGES })).toThrow(/lists several files/);
    expect(() => realClusterConfig({ KUBECONFIG: '/a', ...IMAGES }, 'Bad-Id')).toThrow(/run id/);
  });

  it('splits image references into the chart\'s repository, tag and digest', () => {
    expect(chartImage('gatehouse-operator:e2e')).toEqual({ repository: 'gatehouse-operator', tag: 'e2e' });
    expect(chartImage('localhost:5000/gatehouse/operator:e2e')).toEqual({ repository: 'localhost:5000/gatehouse/operator', tag: 'e2e' });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(chartImage(`localhost:5000/gatehouse/operator@${digest}`)).toEqual({ repository: 'localhost:5000/gatehouse/operator', digest });
    expect(chartImage(`gatehouse/operator:1.2@${digest}`)).toEqual({ repository: 'gatehouse/operator', tag: '1.2', digest });
  });
});

describe('the real-cluster install, against the loopback API server', () => {
  let cluster: TestCluster;
  let config: RealClusterConfig;
  let valuesFile: string;
  let scratch: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    config = realClusterConfig({ KUBECONFIG: cluster.kubeconfigPath, GATEHOUSE_E2E_OPERATOR_IMAGE: 'localhost:5000/gatehouse/operator:e2e', GATEHOUSE_E2E_SIDECAR_IMAGE: 'gatehouse/sidecar:e2e-1' }, 'test1');
    scratch = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-real-cluster-'));
    valuesFile = path.join(scratch, 'values.yaml');
    await writeFile(valuesFile, helmValuesYaml(config));
    for (const manifest of [releaseNamespaceManifest(config), workloadNamespaceManifest(config.namespace)]) {
      const result = await cluster.kubectl(['apply', '-f', '-'], { stdin: manifest });
      expect(result).toMatchObject({ exitCode: 0 });
    }
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('labels the workload namespace for injection', async () => {
    const namespace = await cluster.kubectl.json<{ metadata: { labels: Record<string, string> } }>(['get', 'namespace', config.namespace]);
    expect(namespace.metadata.labels['gatehouse.dev/inject']).toBe('enabled');
  });

  it('has a PostgreSQL Secret, Deployment and Service the API server accepts, labelled so the injector leaves the database alone', async () => {
    const secret = await cluster.kubectl(['apply', '--dry-run=server', '--namespace', config.namespace, '-f', '-', '-o', 'json'], { stdin: postgresSecretManifest('abc123') });
    expect(secret.stderr).toBe('');
    expect(secret.exitCode).toBe(0);
    expect(() => postgresSecretManifest('a b: c')).toThrow(/alphanumeric/);
    const applied = await cluster.kubectl(['apply', '--dry-run=server', '--namespace', config.namespace, '-f', POSTGRES_MANIFEST, '-o', 'json']);
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    const items = (JSON.parse(applied.stdout) as { items: { kind: string; metadata: { namespace: string }; spec: Record<string, unknown> }[] }).items;
    expect(items.map((item) => item.kind)).toEqual(['Deployment', 'Service']);
    for (const item of items) expect(item.metadata.namespace).toBe(config.namespace);
    const template = (items[0]!.spec as { template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string; env: { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[] }[] } } }).template;
    expect(template.metadata.labels['gatehouse.dev/inject']).toBe('disabled');
    expect(template.spec.containers[0]!.image).toBe('postgres:15');
    expect(template.spec.containers[0]!.env.find((variable) => variable.name === 'POSTGRES_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe('orders-postgres-superuser');
  });

  it('installs the chart with the generated values and the exact command line, minus the wait for running pods', async () => {
    expect(helmValues(config)).toMatchObject({ image: { repository: 'localhost:5000/gatehouse/operator', tag: 'e2e' }, sidecar: { image: 'gatehouse/sidecar:e2e-1' }, replicaCount: 1 });
    const lint = await cluster.kubectl.helm(['lint', '--strict', 'charts/gatehouse', '--values', valuesFile]);
    expect(lint.exitCode).toBe(0);
    const args = helmInstallArgs(config, valuesFile);
    expect(args.slice(-3)).toEqual(['--wait', '--timeout', '5m']);
    // Nothing runs pods here, so --wait would never end; everything before it is what a real run sends.
    const installed = await cluster.kubectl.helm(args.slice(0, -3), { timeoutMs: 120_000 });
    expect(installed.stderr).not.toMatch(/Error/);
    expect(installed.exitCode).toBe(0);

    const deployment = await cluster.kubectl.json<{ spec: { replicas: number; template: { spec: { containers: { name: string; image: string; args: string[] }[] } } } }>(
      ['get', 'deployment', OPERATOR_DEPLOYMENT, '--namespace', config.releaseNamespace]);
    expect(deployment.spec.replicas).toBe(1);
    const operator = deployment.spec.template.spec.containers[0]!;
    expect(operator.image).toBe('localhost:5000/gatehouse/operator:e2e');
    expect(operator.args).toContain('--sidecar-image=gatehouse/sidecar:e2e-1');
    expect(operator.args).toContain(`--namespace=${config.releaseNamespace}`);
    // Recordings on, where the scenario copies them from.
    expect(operator.args).toContain(`--recordings-dir=${RECORDINGS_DIR}`);
    const pdb = await cluster.kubectl.helm(['get', 'manifest', 'gatehouse', '--namespace', config.releaseNamespace]);
    expect(parseAllDocuments(pdb.stdout).map((document) => (document.toJS() as { kind?: string } | null)?.kind)).not.toContain('PodDisruptionBudget');
  }, 180_000);

  it('builds kubectl command lines the real kubectl accepts (they fail only because no such pod runs here)', async () => {
    const sql = "SELECT 'a b; c' AS \"x\"";
    const psql = appPsqlArgs(config.namespace, 'ci-job', sql);
    // The SQL is one argv element all the way to psql: no shell in between to re-split or expand it.
    expect(psql.slice(psql.indexOf('--'))).toEqual(['--', 'env', 'PGDATABASE=postgres', 'PGUSER=app', 'PGPASSWORD=anything', 'PGSSLMODE=disable', 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    expect(psql.join(' ')).not.toMatch(/PGHOST|PGPORT/);
    for (const args of [psql, databaseSqlArgs(config.namespace, 'SELECT 1'), podProxyArgs(config.namespace, 'ci-job', 15090, '/metrics'),
      ['cp', '--container', 'operator', `${config.releaseNamespace}/no-such-pod:${RECORDINGS_DIR}`, path.join(scratch, 'copy')]]) {
      const result = await cluster.kubectl(args);
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).not.toMatch(/unknown (flag|shorthand)|invalid argument|usage:/i);
      expect(result.stderr).toMatch(/not ?found|NotFound|404/i);
    }
    expect(podProxyArgs('ns-1', 'web-1', 15090, '/metrics')).toEqual(['get', '--raw', '/api/v1/namespaces/ns-1/pods/web-1:15090/proxy/metrics']);
  }, 60_000);

  it('cleans up: helm uninstall, then both namespaces deleted', async () => {
    for (const command of cleanupCommands(config)) {
      const result = command.tool === 'helm' ? await cluster.kubectl.helm(command.args, { timeoutMs: 120_000 }) : await cluster.kubectl(command.args, { timeoutMs: 120_000 });
      expect(result.stderr).not.toMatch(/Error/);
      expect(result.exitCode).toBe(0);
    }
    const left = await cluster.kubectl(['get', 'deployment', OPERATOR_DEPLOYMENT, '--namespace', config.releaseNamespace]);
    expect(left.exitCode).not.toBe(0);
    for (const namespace of [config.namespace, config.releaseNamespace]) {
      const gone = await cluster.kubectl(['get', 'namespace', namespace]);
      expect(gone.stderr).toMatch(/not found/i);
    }
  }, 300_000);
});
