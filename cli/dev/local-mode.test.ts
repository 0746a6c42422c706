// Local mode end to end: runLocalMode on a temp config folder in front of a real PostgreSQL, the
// control plane and the sidecar talking gRPC on loopback, real psql sessions. Policy edits reach a
// live session within a second, a broken edit changes nothing, a rotated Secret ends the sessions
// on the old login, and postgres-dynamic issues a real role.
import { adminPsqlOn, APP_OWNER, preparePaymentsDatabase } from '../../sidecar/postgres/testing/sidecar-fixture.js';
import { InteractivePsql, psqlOnce } from '../../testing/interactive-psql.js';
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import {
  freeSidecarPort, IDENTITY_YAML, policyYaml, resourceYaml, secretYaml, startLocalModeRun, waitFor, type Login, type LocalModeRun,
} from './testing/local-mode-fixture.js';

const READ_ONLY = ['{name: read, effect: allow, operations: [read, transaction, session]}'];
const NO_CUSTOMERS = [...READ_ONLY, '{name: no-customers, effect: deny, operations: [read], tables: [customers], message: customers are off limits}'];

let server: PostgresServer;
let run: LocalModeRun | undefined;
const sessions: InteractivePsql[] = [];

beforeAll(async () => {
  server = await startPostgres();
  await preparePaymentsDatabase(server);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
  await run?.stop();
  run = undefined;
});

async function start(rules: readonly string[], login: Login = APP_OWNER, strategy: 'static' | 'postgres-dynamic' = 'static'): Promise<LocalModeRun> {
  const sidecarPort = await freeSidecarPort();
  run = await startLocalModeRun({
    sidecarPort,
    files: {
      'identity.yaml': IDENTITY_YAML,
      'resource.yaml': resourceYaml(server.port, sidecarPort, strategy),
      'secret.yaml': secretYaml(login),
      'policy.yaml': policyYaml(rules),
    },
  });
  return run;
}

function psqlSession(port: number): InteractivePsql {
  const session = new InteractivePsql({ port });
  sessions.push(session);
  return session;
}

/** Runs `sql` on the live session until its answer satisfies `done`; returns how long that took from `since`. */
async function msUntil(session: InteractivePsql, sql: string, done: (stderr: string) => boolean, since: number): Promise<number> {
  let elapsed = 0;
  await waitFor(`a statement answered as expected: ${sql}`, async () => {
    const answer = await session.run(sql);
    elapsed = Date.now() - since;
    return done(answer.stderr);
  }, 5_000, 5);
  return elapsed;
}

describe('gatehouse dev against a real PostgreSQL', () => {
  test('a policy edit reaches the next statement of a live psql session within a second', async () => {
    const { port } = await start(READ_ONLY);
    const session = psqlSession(port);
    expect(await session.run('SELECT count(*) FROM customers;')).toEqual({ stdout: '3', stderr: '' });

    const editedAt = Date.now();
    await run!.write('policy.yaml', policyYaml(NO_CUSTOMERS));
    const latencyMs = await msUntil(session, 'SELECT count(*) FROM customers;', (stderr) => stderr.includes('42501'), editedAt);
    if (process.env.GATEHOUSE_REPORT_LATENCY) process.stdout.write(`policy edit to enforcement: ${latencyMs} ms\n`);
    expect(latencyMs).toBeLessThan(2_000);

    const denied = await session.run('SELECT count(*) FROM customers;');
    expect(denied.stderr).toContain('ERROR:  42501: gatehouse: customers are off limits');
    expect(await session.run('SELECT count(*) FROM orders;')).toEqual({ stdout: '50', stderr: '' });
  });

  test('/readyz is ready once the first snapshot is applied; /metrics carries the sidecar and the control plane', async () => {
    await start(READ_ONLY);
    expect(await run!.admin('/readyz')).toEqual({ status: 200, body: 'ok\n' });
    const { body } = await run!.admin('/metrics');
    expect(body).toContain('gatehouse_sidecar_policy_reloads_total{outcome="ok"} 1');
    expect(body).toContain('gatehouse_sidecar_policy_snapshot_expired 0');
    expect(body).toContain('gatehouse_control_plane_connected_sidecars 1');
    expect(body).toContain('gatehouse_control_plane_config_reloads_total{outcome="published"} 1');
    expect(body).toMatch(/gatehouse_control_plane_node_acked_version_info\{node="local\/app",type="IdentityPolicy",version="\w+"\} 1/);
  });

  test('a broken edit is refused and the policy in force stays, until the file is fixed', async () => {
    const { port } = await start(READ_ONLY);
    const session = psqlSession(port);
    await run!.write('policy.yaml', `${policyYaml(NO_CUSTOMERS)}  masking: [unclosed\n`);
    await waitFor('the broken folder reported', () => run!.problems.some((problem) => problem.code === 'GH_ERR_MANIFEST_YAML'));
    await waitFor('the reload refused', async () => (await run!.admin('/metrics')).body.includes('config_reloads_total{outcome="refused"} 1'));
    expect(await session.run('SELECT count(*) FROM customers;')).toEqual({ stdout: '3', stderr: '' });

    await run!.write('policy.yaml', policyYaml(NO_CUSTOMERS));
    await msUntil(session, 'SELECT count(*) FROM customers;', (stderr) => stderr.includes('customers are off limits'), Date.now());
  });

  test('a rotated Secret password closes the sessions on the old login; new sessions use the new one', async () => {
    await adminPsqlOn(server, "CREATE ROLE rotating LOGIN PASSWORD 'first-password'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO rotating");
    const { port } = await start(READ_ONLY, { user: 'rotating', password: 'first-password' });
    const session = psqlSession(port);
    expect(await session.run('SELECT current_user;')).toEqual({ stdout: 'rotating', stderr: '' });

    await adminPsqlOn(server, "ALTER ROLE rotating PASSWORD 'second-password'");
    await run!.write('secret.yaml', secretYaml({ user: 'rotating', password: 'second-password' }));
    let told = '';
    await waitFor('the live session closed', async () => {
      const answer = await session.run('SELECT 1;');
      told += answer.stderr;
      return answer.exitCode !== undefined;
    });
    expect(told).toContain('FATAL:  57P01: gatehouse: session closed: the credential was rotated');
    expect(await session.exited).toBe(2);

    const fresh = await psqlOnce(port, 'SELECT current_user');
    expect(fresh).toMatchObject({ code: 0, stdout: 'rotating' });
  });

  test('postgres-dynamic issues a role of its own for the session, and drops it on shutdown', async () => {
    const { port } = await start(READ_ONLY, server.admin, 'postgres-dynamic');
    const who = await psqlOnce(port, 'SELECT current_user');
    expect(who.code).toBe(0);
    expect(who.stdout).toMatch(/^ghdev_[0-9a-f]{12}_[0-9a-f]{8}$/);
    expect(await psqlOnce(port, 'SELECT count(*) FROM orders')).toMatchObject({ code: 0, stdout: '50' });
    await run!.stop();
    run = undefined;
    expect(await adminPsqlOn(server, `SELECT count(*) FROM pg_roles WHERE rolname = '${who.stdout}'`)).toBe('0');
  });
});
