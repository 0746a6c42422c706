// The real helm (v4, server-side apply by default) and kubectl's typed `create` commands, which send
// protobuf bodies, against the loopback API server.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, type KubeTools } from './kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';

let server: LoopbackApiServer;
let tools: KubeTools;
let chart: string;

const TEMPLATES = `apiVersion: v1
kind: ConfigMap
metadata: {name: demo-config}
data: {image: "{{ .Values.image }}"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      serviceAccountName: demo
      containers: [{name: app, image: "{{ .Values.image }}", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: demo}
spec:
  selector: {app: demo}
  ports: [{port: 80, targetPort: 8080}]
`;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server);
  chart = await mkdtemp(join(tmpdir(), 'gatehouse-chart-'));
  await mkdir(join(chart, 'templates'));
  await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 0.1.0\n');
  await writeFile(join(chart, 'values.yaml'), 'image: demo:1\n');
  await writeFile(join(chart, 'templates', 'all.yaml'), TEMPLATES);
});

afterAll(async () => {
  await rm(chart, { recursive: true, force: true });
  await tools.cleanup();
  await server.close();
});

async function ok(result: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const { code, stdout, stderr } = await result;
  if (code !== 0) throw new Error(`exit ${code}: ${stderr}`);
  return stdout;
}

describe('helm', () => {
  it('installs, upgrades, lists and uninstalls a release', async () => {
    expect(await ok(tools.helm(['install', 'demo', chart, '-n', 'default']))).toContain('STATUS: deployed');
    expect(await ok(tools.kubectl(['get', 'deployment', 'demo', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']))).toBe('demo:1');
    expect(await ok(tools.helm(['upgrade', 'demo', chart, '--set', 'image=demo:2']))).toContain('REVISION: 2');
    expect(await ok(tools.kubectl(['get', 'deployment', 'demo', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']))).toBe('demo:2');
    expect(await ok(tools.helm(['list', '-o', 'json']))).toContain('"revision":"2"');
    expect(await ok(tools.helm(['uninstall', 'demo']))).toContain('release "demo" uninstalled');
    const left = await ok(tools.kubectl(['get', 'deployments,services,configmaps,secrets', '-o', 'name']));
    expect(left.trim()).toBe('');
  });
});

describe('kubectl create (protobuf bodies)', () => {
  it('creates namespaces, secrets, configmaps and service accounts', async () => {
    await ok(tools.kubectl(['create', 'namespace', 'created']));
    await ok(tools.kubectl(['create', 'secret', 'generic', 'creds', '-n', 'created', '--from-literal=password=s3cret']));
    await ok(tools.kubectl(['create', 'configmap', 'settings', '-n', 'created', '--from-literal=mode=strict']));
    await ok(tools.kubectl(['create', 'serviceaccount', 'runner', '-n', 'created']));
    const secret = JSON.parse(await ok(tools.kubectl(['get', 'secret', 'creds', '-n', 'created', '-o', 'json']))) as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('Opaque');
    expect(Buffer.from(secret.data.password, 'base64').toString()).toBe('s3cret');
    expect(await ok(tools.kubectl(['get', 'configmap', 'settings', '-n', 'created', '-o', 'jsonpath={.data.mode}']))).toBe('strict');
    expect(await ok(tools.kubectl(['get', 'serviceaccount', 'runner', '-n', 'created', '-o', 'name']))).toBe('serviceaccount/runner\n');
  });
});
