// `gatehouse dev --demo` as a user runs it: the built CLI in a process of its own, the sample
// config, the embedded PGlite database, real psql; then SIGTERM and a clean exit. Needs the build
// (`npm ci` runs it through `prepare`; locally: `npm run build`).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { psqlOnce } from '../../testing/interactive-psql.js';
import { freePort } from '../../testing/postgres-server.js';

const CLI = join(process.cwd(), 'dist', 'cli', 'main.js');

let dir: string;
let child: ChildProcessWithoutNullStreams | undefined;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm ci does it through prepare)`);
});

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** A copy of config/samples whose sidecar listens on a free port, so a running `npm start` cannot collide. */
async function samplesCopy(sidecarPort: number): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-dev-demo-'));
  await cp(join(process.cwd(), 'config', 'samples'), dir, { recursive: true });
  const resource = join(dir, 'resources', 'orders-db.yaml');
  await writeFile(resource, (await readFile(resource, 'utf8')).replace('port: 15432', `port: ${sidecarPort}`));
  return dir;
}

function waitForLine(cli: ChildProcessWithoutNullStreams, line: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no "${line}" line within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err.slice(-2_000)}`)), timeoutMs);
    cli.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    cli.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.split('\n').includes(line)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    cli.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${line}"\nstdout: ${out}\nstderr: ${err.slice(-2_000)}`));
    });
  });
}

function exitWithin(cli: ChildProcessWithoutNullStreams, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running ${timeoutMs} ms after SIGTERM`)), timeoutMs);
    cli.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('gatehouse dev --demo: DROP denied with 42501, cards masked, SIGTERM exits 0', async () => {
  const port = await freePort();
  const config = await samplesCopy(port);
  child = spawn(process.execPath, [CLI, 'dev', '--config', config, '--demo', '--admin-port', '0', '--log-level', 'warn'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = await waitForLine(child, 'ready', 30_000);
  expect(out).toContain(`orders-db: psql "host=127.0.0.1 port=${port} dbname=orders user=ci-runner sslmode=disable"`);

  const drop = await psqlOnce(port, 'DROP TABLE orders');
  expect(drop.code).toBe(1);
  expect(drop.stderr).toContain('ERROR:  42501: gatehouse: schema changes go through migrations');

  const card = await psqlOnce(port, 'SELECT card_number FROM customers LIMIT 1');
  expect(card.code).toBe(0);
  expect(card.stdout).not.toMatch(/\d{4}/);
  expect(card.stdout).toBe('[REDACTED]');

  child.kill('SIGTERM');
  expect(await exitWithin(child, 5_000)).toBe(0);
}, 45_000);
