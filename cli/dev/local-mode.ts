// Local mode (`gatehouse dev`): a sidecar for one identity, configured from a folder of manifests
// (the same YAML a GitOps repo holds, Secrets included), reloaded when the files change, with
// /metrics, /healthz and /readyz, and an optional embedded demo database.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../api/logging/logger.js';
import { loadConfigDir, type ConfigProblem, type GatehouseConfig } from '../../api/manifests/config.js';
import { watchConfigDir } from '../../api/manifests/config-watcher.js';
import { validateConfig } from '../../api/manifests/validate.js';
import { SqlClassifier, loadSqlParser } from '../../api/sql/classify.js';
import { buildSnapshotFromConfig, type SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { GatehouseError } from '../../api/errors.js';
import { startAdminServer } from '../../sidecar/admin/admin-server.js';
import { createSidecarMetrics } from '../../sidecar/metrics/sidecar-metrics.js';
import { FileSessionRecorder } from '../../sidecar/recording/session-recorder.js';
import { Sidecar } from '../../sidecar/sidecar.js';
import type { DemoDatabase } from './demo-database.js';

export interface LocalModeOptions {
  readonly configDir: string;
  readonly identity: string;
  readonly namespace?: string;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly recordingsDir: string;
  /** Masking hash key; a random one per run when absent (hashes then differ between runs). */
  readonly hashKey?: Uint8Array;
  readonly demo: boolean;
  readonly logger: Logger;
  /** Grace period for sessions on shutdown. */
  readonly drainMs: number;
}

export interface LocalModeReady {
  readonly snapshot: SidecarSnapshot;
  readonly ports: ReadonlyMap<string, number>;
  readonly adminPort: number;
  readonly demo?: DemoDatabase;
}

export interface LocalModeEvents {
  onReady(ready: LocalModeReady): void;
  onProblems(problems: readonly ConfigProblem[]): void;
}

function errorsOf(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems.filter((problem) => (problem.severity ?? 'error') === 'error');
}

/** Points every PostgreSQL resource at the demo database (plain TCP on loopback). */
function useDemoDatabase(config: GatehouseConfig, demo: DemoDatabase | undefined): void {
  if (!demo) return;
  for (const resource of config.resources) {
    if (resource.spec.protocol !== 'postgres') continue;
    resource.spec.address = `${demo.host}:${demo.port}`;
    resource.spec.tls = { mode: 'disable' };
  }
}

async function loadSnapshot(options: LocalModeOptions, demo: DemoDatabase | undefined, events: LocalModeEvents): Promise<SidecarSnapshot> {
  const config = await loadConfigDir(options.configDir);
  const problems = validateConfig(config);
  if (problems.length > 0) events.onProblems(problems);
  const errors = errorsOf(problems);
  if (errors.length > 0) {
    throw new GatehouseError('GH_ERR_CONFIG_INVALID', { count: errors.length, path: options.configDir });
  }
  useDemoDatabase(config, demo);
  return buildSnapshotFromConfig(config, options.identity, options.namespace);
}

/** Runs until `signal` aborts, then drains and resolves. */
export async function runLocalMode(options: LocalModeOptions, events: LocalModeEvents, signal: AbortSignal): Promise<void> {
  const { logger } = options;
  await loadSqlParser();
  // PGlite is loaded only for the demo: it is large, and a sidecar in front of a real database never needs it.
  const demo = options.demo ? await (await import('./demo-database.js')).startDemoDatabase() : undefined;
  const metrics = createSidecarMetrics();
  const sidecar = new Sidecar({
    logger,
    metrics,
    classifier: new SqlClassifier(),
    recorder: new FileSessionRecorder(options.recordingsDir, (error) => logger.error({ err: (error as Error).message }, 'session recording could not be written')),
    hashKey: options.hashKey ?? randomBytes(32),
  });
  const cleanups: (() => Promise<void> | void)[] = [async () => demo?.stop()];
  try {
    const snapshot = await loadSnapshot(options, demo, events);
    await sidecar.apply(snapshot);
    cleanups.unshift(() => sidecar.stop(options.drainMs));
    const admin = await startAdminServer({
      host: options.adminHost,
      port: options.adminPort,
      registry: metrics.registry,
      notReadyReason: () => sidecar.notReadyReason(),
    });
    cleanups.unshift(() => admin.close());
    const watcher = watchConfigDir({
      dir: options.configDir,
      onConfig: () => void reload(),
      onError: (error) => logger.error({ err: (error as Error).message }, 'config folder could not be read'),
    });
    cleanups.unshift(() => watcher.close());
    const reload = async () => {
      try {
        await sidecar.apply(await loadSnapshot(options, demo, events));
      } catch (error) {
        metrics.policyReloads.inc({ outcome: 'error' });
        // The last good snapshot stays in force: a broken edit never opens or closes anything.
        logger.error({ code: (error as GatehouseError).code, err: (error as Error).message }, 'config reload refused; keeping the last good policy');
      }
    };
    const ports = new Map(snapshot.resources.flatMap((entry) => {
      const port = sidecar.portOf(entry.resource.metadata.name);
      return port === undefined ? [] : [[entry.resource.metadata.name, port] as const];
    }));
    events.onReady({ snapshot, ports, adminPort: admin.port, ...(demo ? { demo } : {}) });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    logger.info('shutting down: draining sessions');
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}
