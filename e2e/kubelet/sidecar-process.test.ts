import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../api/logging/logger.js';
import { until } from '../../testing/async-checks.js';
import { SidecarProcess, type SidecarState } from './sidecar-process.js';
import type { SidecarSpec } from './sidecar-spec.js';
import { freePort } from '../../testing/free-port.js';

const fakeSidecar = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testdata', 'fake-sidecar.mjs');

describe('SidecarProcess', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'sidecar-process-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  async function run(env: Record<string, string>, overrides: Partial<SidecarSpec> = {}, probe: { periodMs?: number; failureThreshold?: number } = {}) {
    const adminPort = await freePort();
    const states: SidecarState[] = [];
    const spec: SidecarSpec = {
      image: 'fake', serviceAccountName: 'sa', command: [], args: ['sidecar', '--flag'],
      env: new Map(Object.entries({ ...env, GATEHOUSE_ADMIN_PORT: String(adminPort) })),
      tokens: [], fieldFiles: [],
      startupProbe: { path: '/readyz', port: adminPort, periodMs: 1000, failureThreshold: 10, timeoutMs: 1000, ...probe },
      terminationGracePeriodSeconds: 5,
      ...overrides,
    };
    const process_ = new SidecarProcess({
      spec, commandPrefix: [process.execPath, fakeSidecar], cwd: dir, logFile: path.join(dir, 'pod.log'),
      logger: silentLogger(), onChange: (state) => states.push(state), probeIntervalMs: 50, restartBackoffMs: 100, maxGraceMs: 2000,
    });
    process_.start();
    return { process_, states };
  }

  it('runs the command with the spec env and args, and is ready only once the startup probe passes', async () => {
    const { process_, states } = await run({ FAKE_READY_AFTER_MS: '400', GREETING: 'hello' });
    await until(() => process_.logs().includes('"argv"'));
    expect(process_.current.ready).toBe(false);
    const printed = JSON.parse(process_.logs().split('\n')[0]) as { argv: string[]; env: Record<string, string> };
    expect(printed.argv).toEqual(['sidecar', '--flag']);
    expect(printed.env.GREETING).toBe('hello');
    // The kubelet's own environment does not leak into the container.
    expect(printed.env.NODE_OPTIONS).toBeUndefined();
    await until(() => process_.current.ready);
    expect(states.find((state) => state.ready)?.started).toBe(true);
    expect(await readFile(path.join(dir, 'pod.log'), 'utf8')).toContain('"GREETING":"hello"');
    const exit = await process_.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(process_.logs()).toContain('terminating');
  });

  it('restarts a process that dies and counts the restart', async () => {
    const { process_ } = await run({ FAKE_EXIT_AFTER_MS: '300' });
    const firstPid = process_.pid;
    await until(() => process_.current.restartCount >= 1 && process_.current.running);
    expect(process_.pid).not.toBe(firstPid);
    expect(process_.current.lastTermination?.code).toBe(3);
    await process_.stop();
  });

  it('kills and restarts a process whose startup probe keeps failing', async () => {
    const { process_ } = await run({ FAKE_READY_AFTER_MS: '600000' }, {}, { periodMs: 100, failureThreshold: 3 });
    await until(() => process_.current.restartCount >= 1);
    expect(process_.current.ready).toBe(false);
    expect(process_.current.lastTermination?.signal).toBe('SIGKILL');
    expect(process_.logs()).toContain('startup probe /readyz failed');
    await process_.stop();
  });

  it('kills with SIGKILL a process that ignores SIGTERM, once the grace period is over', async () => {
    const { process_ } = await run({ FAKE_IGNORE_SIGTERM: '1' }, { terminationGracePeriodSeconds: 1 });
    await until(() => process_.current.ready);
    const before = Date.now();
    const exit = await process_.stop();
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(Date.now() - before).toBeGreaterThanOrEqual(950);
    expect(process_.logs()).toContain('ignoring SIGTERM');
    expect(process_.current.running).toBe(false);
  });
});
