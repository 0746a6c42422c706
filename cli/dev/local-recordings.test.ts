// Recordings in local mode, end to end as a user meets them: `gatehouse dev --demo` from source in a
// process of its own, real psql through its sidecar, then `gatehouse sessions list|verify` on the
// folder with the key the run published there; then one line of a recording edited, and verify
// names that file, line and seq.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { psqlOnce } from '../../testing/interactive-psql.js';
import { freePort } from '../../testing/postgres-server.js';
import { LOCAL_RECORDING_KEYS_FILE } from './local-recordings.js';

const MAIN = join(process.cwd(), 'cli', 'main.ts');
let dir: string;
let child: ChildProcessWithoutNullStreams | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function startDev(args: readonly string[]): { child: ChildProcessWithoutNullStreams; output: () => string; ready: Promise<void>; exited: Promise<number | null> } {
  const dev = spawn(process.execPath, ['--import', 'tsx', MAIN, 'dev', ...args], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  dev.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  dev.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => dev.on('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 60 s:\n${out.slice(-3_000)}`)), 60_000);
    dev.stdout.on('data', () => {
      if (out.split('\n').includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse dev exited (${code}) before ready:\n${out.slice(-3_000)}`));
    });
  });
  return { child: dev, output: () => out, ready, exited };
}

async function gatehouse(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const io = bufferedIO(dir);
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

test('a psql session through gatehouse dev is recorded, verifies intact, and an edited line is named', async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-dev-recordings-'));
  const config = join(dir, 'config');
  await cp(join(process.cwd(), 'config', 'samples'), config, { recursive: true });
  const port = await freePort();
  const resource = join(config, 'resources', 'orders-db.yaml');
  await writeFile(resource, (await readFile(resource, 'utf8')).replace('port: 15432', `port: ${port}`));
  const recordings = join(dir, 'recordings');

  const dev = startDev(['--config', config, '--demo', '--admin-port', '0', '--log-level', 'warn', '--recordings', recordings]);
  child = dev.child;
  await dev.ready;
  expect((await psqlOnce(port, 'SELECT count(*) FROM customers')).code).toBe(0);
  const drop = await psqlOnce(port, 'DROP TABLE orders');
  expect(drop.stderr).toContain('42501');
  dev.child.kill('SIGTERM');
  expect(await dev.exited).toBe(0);

  const keys = join(recordings, LOCAL_RECORDING_KEYS_FILE);
  const listed = await gatehouse(['sessions', 'list', '--dir', recordings, '--json']);
  expect(listed.code).toBe(0);
  const sessions = JSON.parse(listed.out) as { session: string; identity: string; resource: string; status: string; node: string }[];
  expect(sessions).toHaveLength(2);
  for (const session of sessions) expect(session).toMatchObject({ identity: 'ci-runner', resource: 'orders-db', status: 'sealed', node: 'local/ci-runner' });

  const intact = await gatehouse(['sessions', 'verify', '--dir', recordings, '--key', keys]);
  expect(intact.out).toContain('2 file(s) intact, 0 problem(s)');
  expect(intact.code).toBe(0);

  // Someone rewrites what was run: the DROP becomes a harmless SELECT in the file.
  const [day] = (await readdir(recordings)).filter((name) => !name.startsWith('.'));
  let edited: { file: string; line: number } | undefined;
  for (const name of await readdir(join(recordings, day!))) {
    const path = join(recordings, day!, name);
    const lines = (await readFile(path, 'utf8')).split('\n');
    const index = lines.findIndex((line) => line.includes('DROP TABLE orders'));
    if (index < 0) continue;
    lines[index] = lines[index]!.replace('DROP TABLE orders', 'SELECT 1');
    await writeFile(path, lines.join('\n'));
    edited = { file: `${day}/${name}`, line: index + 1 };
  }
  expect(edited).toBeDefined();
  const tampered = await gatehouse(['sessions', 'verify', '--dir', recordings, '--key', keys]);
  expect(tampered.code).toBe(1);
  expect(tampered.out).toMatch(new RegExp(`BAD ${recordings}/${edited!.file}:${edited!.line} seq \\d+: edited`));
  expect(tampered.out).toContain('1 file(s) intact, 1 problem(s)');
}, 120_000);
