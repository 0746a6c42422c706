// Approvals in local mode, end to end: `gatehouse dev` (runLocalMode) in front of a real
// PostgreSQL, a real psql whose DELETE waits for a decision, and `gatehouse requests`, `approve`
// and `deny` run as the CLI runs them, talking to the running dev over its admin port.
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { adminPsqlOn, APP_OWNER, preparePaymentsDatabase } from '../../sidecar/postgres/testing/sidecar-fixture.js';
import { psqlOnce, type PsqlResult } from '../../testing/interactive-psql.js';
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import {
  freeSidecarPort, IDENTITY_YAML, policyYaml, resourceYaml, secretYaml, startLocalModeRun, waitFor, type LocalModeRun,
} from '../dev/testing/local-mode-fixture.js';
import type { PendingRequestRow } from '../../operator/approvals/access-request-client.js';

let server: PostgresServer;
let run: LocalModeRun;
let admin: string;

beforeAll(async () => {
  server = await startPostgres();
  await preparePaymentsDatabase(server);
  const sidecarPort = await freeSidecarPort();
  run = await startLocalModeRun({
    sidecarPort,
    files: {
      'identity.yaml': IDENTITY_YAML,
      'resource.yaml': resourceYaml(server.port, sidecarPort),
      'secret.yaml': secretYaml(APP_OWNER),
      'policy.yaml': policyYaml([
        '{name: read, effect: allow, operations: [read, transaction, session]}',
        '{name: deletes, effect: require-approval, operations: [delete], message: deletes need a second pair of eyes, approval: {approvers: {groups: [dba]}, timeout: 30s}}',
        '{name: updates, effect: require-approval, operations: [write], approval: {approvers: {groups: [dba]}, minApprovals: 2, timeout: 30s}}',
      ]),
    },
  });
  admin = `http://127.0.0.1:${run.ready.adminPort}`;
}, 60_000);

afterAll(async () => {
  await run?.stop();
  await server?.stop();
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = bufferedIO();
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** The one pending request whose statement is `statement`, once the held psql has asked. */
async function pendingFor(statement: string): Promise<PendingRequestRow> {
  let found: PendingRequestRow | undefined;
  await waitFor(`a pending request for ${statement}`, async () => {
    const { out } = await cli('requests', '--dev-admin', admin, '--json');
    found = (JSON.parse(out) as PendingRequestRow[]).find((row) => row.statement === statement);
    return found !== undefined;
  }, 10_000, 50);
  return found!;
}

async function stillRunning(psql: Promise<PsqlResult>): Promise<boolean> {
  const marker = Symbol('running');
  return (await Promise.race([psql, new Promise((resolve) => setTimeout(() => resolve(marker), 300))])) === marker;
}

describe('gatehouse requests | approve | deny against gatehouse dev', () => {
  it('holds psql until `gatehouse approve` releases it', async () => {
    const statement = 'DELETE FROM orders WHERE id = 5 RETURNING id';
    const psql = psqlOnce(run.port, statement);
    const request = await pendingFor(statement);
    expect(request).toMatchObject({ identity: 'app', resource: 'db', rule: 'app-policy/deletes', approvals: '0/1' });
    const table = await cli('requests', '--dev');
    // --dev means the default admin port, which this run does not use: it says how to point at it.
    expect(table.code).toBe(1);
    expect(table.err).toMatch(/GH_ERR_APPROVAL_DESK_UNREACHABLE: Cannot reach the running `gatehouse dev` at http:\/\/127.0.0.1:9464/);
    const listed = await cli('requests', '--dev-admin', admin);
    expect(listed.out).toMatch(new RegExp(`^NAME +IDENTITY +RESOURCE +RULE +APPROVALS +EXPIRES +STATEMENT\\n${request.name} +app +db +app-policy/deletes +0/1 `));
    expect(await stillRunning(psql)).toBe(true);
    expect(await adminPsqlOn(server, 'SELECT count(*) FROM orders WHERE id = 5')).toBe('1');

    const approved = await cli('approve', request.name, '--dev-admin', admin, '--as', 'alice', '--reason', 'cleanup ticket 12');
    expect(approved).toEqual({ code: 0, out: `${request.name}: Approved (1/1 approvals)\n`, err: '' });
    expect(await psql).toMatchObject({ code: 0, stdout: '5' });
    expect(await adminPsqlOn(server, 'SELECT count(*) FROM orders WHERE id = 5')).toBe('0');
    expect((await cli('requests', '--dev-admin', admin)).out).toBe('No pending requests.\n');
  });

  it('answers psql with 42501 naming who denied it after `gatehouse deny`', async () => {
    const statement = 'DELETE FROM orders WHERE id = 6 RETURNING id';
    const psql = psqlOnce(run.port, statement);
    const request = await pendingFor(statement);
    expect((await cli('deny', request.name, '--dev-admin', admin, '--as', 'bob', '--reason', 'not on a Friday')).code).toBe(0);
    const result = await psql;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`ERROR:  42501: gatehouse: approval denied by bob: not on a Friday (${request.name})`);
    expect(await adminPsqlOn(server, 'SELECT count(*) FROM orders WHERE id = 6')).toBe('1');
  });

  it('needs distinct approvers for N of M, refuses the requesting identity, and names unknown requests', async () => {
    const statement = 'UPDATE orders SET total = 1 WHERE id = 7 RETURNING total';
    const psql = psqlOnce(run.port, statement);
    const request = await pendingFor(statement);
    expect(request.approvals).toBe('0/2');
    const self = await cli('approve', request.name, '--dev-admin', admin, '--as', 'app');
    expect(self.code).toBe(1);
    expect(self.err).toMatch(/GH_ERR_APPROVAL_REFUSED: .*app made this request and may not decide it/);
    expect((await cli('approve', request.name, '--dev-admin', admin, '--as', 'alice')).out).toBe(`${request.name}: Pending (1/2 approvals)\n`);
    const twice = await cli('approve', request.name, '--dev-admin', admin, '--as', 'alice');
    expect(twice.err).toMatch(/alice has already decided it; N-of-M needs distinct approvers/);
    expect(await stillRunning(psql)).toBe(true);
    expect((await cli('approve', request.name, '--dev-admin', admin, '--as', 'carol')).out).toBe(`${request.name}: Approved (2/2 approvals)\n`);
    expect(await psql).toMatchObject({ code: 0, stdout: '1.00' });
    const unknown = await cli('approve', 'app-nothing', '--dev-admin', admin);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/GH_ERR_APPROVAL_NOT_FOUND: No pending approval request named app-nothing in gatehouse dev/);
  });

  it('exposes the approval metrics on the admin port', async () => {
    const { body } = await run.admin('/metrics');
    expect(body).toMatch(/gatehouse_approvals_decided_total\{outcome="approved"\} 2/);
    expect(body).toMatch(/gatehouse_approvals_decided_total\{outcome="denied"\} 1/);
    expect(body).toMatch(/gatehouse_approvals_pending 0/);
    expect(body).toMatch(/gatehouse_approvals_decision_seconds_count\{outcome="approved"\} 2/);
  });

  it('refuses usage mistakes', async () => {
    expect((await cli('approve', '--dev-admin', admin)).err).toMatch(/needs exactly one request NAME/);
    const as = await cli('deny', 'x', '--as', 'bob', '--kubeconfig', '/nonexistent');
    expect(as.code).toBe(2);
    expect(as.err).toMatch(/--as is for --dev only/);
    const noConfig = await cli('deny', 'x', '--kubeconfig', '/nonexistent/kubeconfig');
    expect(noConfig.code).toBe(1);
    expect(noConfig.err).toMatch(/GH_ERR_KUBE_CONFIG/);
  });
});
