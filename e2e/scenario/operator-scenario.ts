// The end-to-end scenario of issue 5, as a cluster admin meets Gatehouse: the real kubectl applies
// the sample policies; the real operator reconciles them and serves its webhooks and control plane; a
// pod created with kubectl comes back with the sidecar injected; the sidecar runs with the pod's
// projected token, and psql goes through it to a real PostgreSQL. One body, registered by each test
// file with the cluster it runs on (operator-scenario.test.ts, helm-scenario.test.ts), so every way of
// installing Gatehouse meets the same steps and assertions.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bufferedIO } from '../../cli/io.js';
import { runCli } from '../../cli/main.js';
import { kubectlFailed, type CommandResult } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitFor, waitForJsonPath } from '../harness/wait-for.js';
import { intoNamespace, type ScenarioCluster } from './scenario-cluster.js';

const DB_USER = { user: 'orders_app', password: 'e2e-orders-password-7f3a' };
const APP_POD = 'ci-job';

/**
 * Registers the scenario (beforeAll, afterAll and its tests) on the cluster `startCluster` brings up.
 * Returns the running cluster for a caller's own checks after the scenario's, valid between beforeAll and afterAll.
 */
export function operatorScenario(startCluster: () => Promise<ScenarioCluster>): () => ScenarioCluster {
  let cluster: ScenarioCluster;
  let NAMESPACE: string;

  async function kubectlOk(args: readonly string[], stdin?: string): Promise<string> {
    const result = await cluster.kubectl(args, stdin === undefined ? {} : { stdin });
    if (result.exitCode !== 0) throw kubectlFailed(args, result);
    return result.stdout;
  }

  function psqlThroughSidecar(sql: string): Promise<CommandResult> {
    return cluster.psqlInApp(APP_POD, sql);
  }

  async function metricValue(pattern: RegExp): Promise<number> {
    const text = await cluster.sidecarMetrics(APP_POD);
    return text.split('\n').filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  }

  /** The samples of config/samples/FOLDER, moved into the run's namespace. */
  async function sampleManifests(folder: string): Promise<string> {
    const directory = path.join(REPO_ROOT, 'config/samples', folder);
    const files = (await readdir(directory)).filter((file) => /\.ya?ml$/.test(file)).sort();
    const texts = await Promise.all(files.map((file) => readFile(path.join(directory, file), 'utf8')));
    return intoNamespace(texts.join('\n---\n'), NAMESPACE);
  }

  beforeAll(async () => {
    cluster = await startCluster();
    NAMESPACE = cluster.namespace;
    await cluster.databaseSql(`
      CREATE ROLE ${DB_USER.user} LOGIN PASSWORD '${DB_USER.password}';
      CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card_number text);
      INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111'), (2, 'Alan Turing', 'alan@example.com', '5500 0000 0000 0004');
      GRANT SELECT ON customers TO ${DB_USER.user};`);
    await kubectlOk(['apply', '-f', '-'], ['apiVersion: v1', 'kind: ServiceAccount', `metadata: {name: ci-runner, namespace: ${NAMESPACE}}`, ''].join('\n'));
    // With the operator up, the validating webhook checks every Gatehouse object applied from here on.
    for (const folder of ['identities', 'secrets', 'resources', 'policies']) await kubectlOk(['apply', '-f', '-'], await sampleManifests(folder));
    // Point the sample database at the real PostgreSQL of this run, with its own login.
    const secret = await kubectlOk(['create', 'secret', 'generic', 'orders-db-admin', '-n', NAMESPACE,
      `--from-literal=username=${DB_USER.user}`, `--from-literal=password=${DB_USER.password}`, '--dry-run=client', '-o', 'yaml']);
    await kubectlOk(['apply', '-f', '-'], secret);
    await kubectlOk(['patch', 'protectedresource', 'orders-db', '-n', NAMESPACE, '--type', 'merge', '-p', JSON.stringify({
      spec: { address: cluster.databaseAddress, database: 'postgres', tls: { mode: 'disable' }, sidecar: { port: cluster.sidecarPort } },
    })]);
    await cluster.startWorkloads();
  }, 600_000);

  afterAll(async () => {
    await cluster?.close();
  }, 600_000);

  describe('a pod in an opted-in namespace, end to end', () => {
    it('reconciles the sample objects to Ready through the status subresource', async () => {
      for (const [resource, name] of [['nonhumanidentities', 'ci-runner'], ['protectedresources', 'orders-db'], ['accesspolicies', 'ci-read-only']] as const) {
        await waitForJsonPath(cluster.kubectl, { resource, name, namespace: NAMESPACE }, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 20_000 });
      }
      const policy = await cluster.kubectl.json<{ metadata: { generation: number }; status: { observedGeneration?: number; conditions: { type: string; observedGeneration?: number }[] } }>(
        ['get', 'accesspolicy', 'ci-read-only', '-n', NAMESPACE]);
      const ready = policy.status.conditions.find((condition) => condition.type === 'Ready');
      expect(ready?.observedGeneration ?? policy.status.observedGeneration).toBe(policy.metadata.generation);
    }, 60_000);

    it('refuses an invalid policy at admission with the same message as gatehouse validate', async () => {
      const result = await cluster.kubectl(['apply', '-f', '-'], { stdin: [
        'apiVersion: gatehouse.dev/v1alpha1', 'kind: AccessPolicy', `metadata: {name: broken, namespace: ${NAMESPACE}}`,
        'spec:', '  subjects: [{identity: ci-runner}]', '  resources: [orders-db]', '  credentialTTL: 2h',
        '  rules: [{name: r, effect: allow, operations: [read]}]', ''].join('\n') });
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toMatch(/GH_ERR_TTL_ABOVE_MAXIMUM|exceeds maxCredentialTTL/);
    });

    it('injects the sidecar into a pod created with kubectl, and the app never sees the credential', async () => {
      await kubectlOk(['apply', '-f', '-'], [
        'apiVersion: v1', 'kind: Pod', `metadata: {name: ${APP_POD}, namespace: ${NAMESPACE}}`,
        'spec:', '  serviceAccountName: ci-runner', '  containers:', '    - {name: app, image: postgres:15, command: [sleep, infinity]}', ''].join('\n'));
      const pod = await cluster.kubectl.json<{ metadata: { annotations?: Record<string, string> }; spec: { initContainers?: { name: string; restartPolicy?: string; image: string }[]; containers: { env?: { name: string; value?: string }[] }[] } }>(
        ['get', 'pod', APP_POD, '-n', NAMESPACE]);
      const sidecar = pod.spec.initContainers?.find((container) => container.name === 'gatehouse-sidecar');
      expect(sidecar).toMatchObject({ restartPolicy: 'Always', image: cluster.sidecarImage });
      expect(pod.metadata.annotations?.['gatehouse.dev/injected']).toBe('true');
      const env = Object.fromEntries((pod.spec.containers[0]!.env ?? []).map((variable) => [variable.name, variable.value]));
      expect(env).toMatchObject({ PGHOST: '127.0.0.1', PGPORT: String(cluster.sidecarPort) });
      expect(JSON.stringify(pod)).not.toContain(DB_USER.password);
    });

    it('runs the sidecar, which gets its snapshot over gRPC and enforces the policy on psql', async () => {
      await cluster.waitForSidecar(APP_POD, 120_000);
      await waitForJsonPath(cluster.kubectl, { resource: 'pod', name: APP_POD, namespace: NAMESPACE }, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 60_000 });

      const select = await psqlThroughSidecar('SELECT name, email, card_number FROM customers ORDER BY id');
      expect(select.stderr).toBe('');
      expect(select.stdout).toContain('Ada Lovelace');
      expect(select.stdout).not.toContain('ada@example.com');
      expect(select.stdout).not.toContain('4111 1111 1111 1111');

      const drop = await psqlThroughSidecar('DROP TABLE customers');
      expect(drop.exitCode).not.toBe(0);
      expect(drop.stderr).toContain('schema changes go through migrations');
      expect(await cluster.databaseSql("SELECT count(*) FROM pg_tables WHERE tablename = 'customers'")).toBe('1');

      const blocked = await metricValue(/^gatehouse_sidecar_blocked_statements_total\{.*rule="ci-read-only\/no-schema-changes"/);
      expect(blocked).toBeGreaterThanOrEqual(1);
    }, 240_000);

    it('denies within 2 s once the policy that allowed it is deleted', async () => {
      const before = await psqlThroughSidecar('SELECT count(*) FROM customers');
      expect(before.stdout.trim()).toBe('2');
      const deletedAt = Date.now();
      await kubectlOk(['delete', 'accesspolicy', 'ci-read-only', '-n', NAMESPACE, '--wait=false']);
      await waitFor(() => psqlThroughSidecar('SELECT count(*) FROM customers'), (result) => result.exitCode !== 0, { timeoutMs: 2_000, intervalMs: 50, what: 'SELECT to be denied after the policy was deleted' });
      const elapsed = Date.now() - deletedAt;
      console.info(`policy deletion enforced on the live sidecar after ${elapsed} ms (${cluster.mode})`);
      expect(elapsed).toBeLessThan(2_000);
      const after = await psqlThroughSidecar('SELECT count(*) FROM customers');
      expect(after.stderr).toMatch(/42501|denied|no policy/i);
    });

    it('logs no secret in the operator or the sidecar output', async () => {
      const sidecarLog = await cluster.sidecarLog(APP_POD);
      expect(sidecarLog.length).toBeGreaterThan(0);
      for (const log of [await cluster.operatorLog(), sidecarLog]) expect(log).not.toContain(DB_USER.password);
      // The pod's token file holds a token bound to this pod, not the operator's credentials.
      const token = await cluster.sidecarToken(APP_POD);
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: string[]; 'kubernetes.io': { pod: { name: string } } };
      expect(claims.aud).toContain('gatehouse');
      expect(claims['kubernetes.io'].pod.name).toBe(APP_POD);
    });

    it('has the psql sessions in the operator\'s recordings, sealed, verifying intact with the key it publishes', async () => {
      const sessions = async () => {
        const dir = await cluster.recordingsDir();
        const io = bufferedIO(REPO_ROOT);
        await runCli(['sessions', 'list', '--dir', dir, '--json'], io);
        return { dir, found: JSON.parse(io.out() || '[]') as { session: string; node: string; identity: string; resource: string; status: string }[] };
      };
      // The sidecar uploads in batches; every psql -c session has ended, so all of them end up sealed.
      // In a real cluster every read is a fresh `kubectl cp` of the operator's folder, so it polls slower.
      const poll = cluster.mode === 'loopback' ? { timeoutMs: 15_000, intervalMs: 200 } : { timeoutMs: 60_000, intervalMs: 2_000 };
      const { dir: recordings, found: listed } = await waitFor(sessions, ({ found }) => found.length >= 3 && found.every((session) => session.status === 'sealed'), { ...poll, what: 'the sessions sealed in the operator\'s store' });
      for (const session of listed) expect(session).toMatchObject({ node: `${NAMESPACE}/${APP_POD}`, identity: 'ci-runner', resource: 'orders-db' });

      const keyDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-key-'));
      try {
        const keyFile = path.join(keyDir, 'recording-key.jwks.json');
        await writeFile(keyFile, await cluster.recordingKeys());
        const io = bufferedIO(REPO_ROOT);
        const code = await runCli(['sessions', 'verify', '--dir', recordings, '--key', keyFile], io);
        // On loopback the store is live: sessions of the later steps may have been sealed since the listing.
        const summary = /(\d+) file\(s\) intact, 0 problem\(s\)/.exec(io.out());
        expect(summary).not.toBeNull();
        expect(Number(summary![1])).toBeGreaterThanOrEqual(listed.length);
        expect(code).toBe(0);
      } finally {
        await rm(keyDir, { recursive: true, force: true });
      }

      // The denied DROP is in the recording, with the rule that denied it.
      const shown = await Promise.all(listed.map(async (session) => {
        const output = bufferedIO(REPO_ROOT);
        await runCli(['sessions', 'show', session.session, '--dir', recordings], output);
        return output.out();
      }));
      const drop = shown.find((text) => text.includes('DROP TABLE customers'));
      expect(drop).toMatch(/\[deny ddl rule=ci-read-only\/no-schema-changes\] DROP TABLE customers/);
    }, 120_000);
  });

  return () => cluster;
}
