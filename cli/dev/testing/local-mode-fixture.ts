// Test support for local mode: writes a config folder (one file per object, so a test edits one
// policy or Secret the way a user would), runs runLocalMode on it in this process, and offers the
// admin endpoints and the reports local mode makes. Never used by production code.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../../api/logging/logger.js';
import type { ConfigProblem } from '../../../api/manifests/config.js';
import { freePort } from '../../../testing/postgres-server.js';
import { runLocalMode, type LocalModeOptions, type LocalModeReady } from '../local-mode.js';

export interface Login {
  readonly user: string;
  readonly password: string;
}

export const IDENTITY_YAML = `apiVersion: gatehouse.dev/v1alpha1
kind: NonHumanIdentity
metadata: {name: app}
spec: {serviceAccountName: app}
`;

export function resourceYaml(databasePort: number, sidecarPort: number, strategy: 'static' | 'postgres-dynamic' = 'static'): string {
  return `apiVersion: gatehouse.dev/v1alpha1
kind: ProtectedResource
metadata: {name: db}
spec:
  protocol: postgres
  address: 127.0.0.1:${databasePort}
  database: app
  tls: {mode: disable}
  credentials: {strategy: ${strategy}, secretRef: {name: db-login}}
  sidecar: {port: ${sidecarPort}}
`;
}

export function secretYaml(login: Login): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: db-login}
stringData: {username: ${login.user}, password: '${login.password}'}
`;
}

/** An AccessPolicy for `app` on `db` with these rules (YAML flow mappings, one per line). */
export function policyYaml(rules: readonly string[]): string {
  return `apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: app-policy}
spec:
  subjects: [{identity: app}]
  resources: [db]
  rules:
${rules.map((rule) => `    - ${rule}`).join('\n')}
`;
}

export interface LocalModeRun {
  readonly dir: string;
  readonly ready: LocalModeReady;
  /** The sidecar port of resource `db`. */
  readonly port: number;
  readonly problems: ConfigProblem[];
  readonly credentialFailures: { readonly resource: string; readonly error: Error }[];
  /** Writes one file of the folder (the watcher picks it up). */
  write(file: string, text: string): Promise<void>;
  /** GET on the admin server. */
  admin(path: string): Promise<{ readonly status: number; readonly body: string }>;
  stop(): Promise<void>;
}

export interface LocalModeRunOptions {
  readonly files: Readonly<Record<string, string>>;
  readonly sidecarPort: number;
  readonly logger?: Logger;
  readonly options?: Partial<LocalModeOptions>;
}

/** A free port for a resource's sidecar listener (spec.sidecar.port): fixed ports collide between runs. */
export const freeSidecarPort = freePort;

export async function startLocalModeRun(setup: LocalModeRunOptions): Promise<LocalModeRun> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-dev-config-'));
  const recordings = await mkdtemp(join(tmpdir(), 'gatehouse-dev-recordings-'));
  for (const [file, text] of Object.entries(setup.files)) await writeFile(join(dir, file), text);
  const problems: ConfigProblem[] = [];
  const credentialFailures: { resource: string; error: Error }[] = [];
  const controller = new AbortController();
  let onReady: (ready: LocalModeReady) => void = () => undefined;
  const readyOrFailed = new Promise<LocalModeReady>((resolve) => {
    onReady = resolve;
  });
  const running = runLocalMode(
    {
      configDir: dir,
      identity: 'app',
      adminHost: '127.0.0.1',
      adminPort: 0,
      recordingsDir: recordings,
      hashKey: Buffer.from('test-hash-key-0123456789abcdef'),
      demo: false,
      logger: setup.logger ?? silentLogger(),
      drainMs: 200,
      ...setup.options,
    },
    {
      onReady: (ready) => onReady(ready),
      onProblems: (found) => problems.push(...found),
      onCredentialFailure: (resource, error) => credentialFailures.push({ resource, error }),
    },
    controller.signal,
  );
  const cleanUp = async () => {
    controller.abort();
    await running.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await rm(recordings, { recursive: true, force: true });
  };
  let ready: LocalModeReady;
  try {
    ready = await Promise.race([readyOrFailed, running.then(() => Promise.reject(new Error('local mode ended before it was ready')))]);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  return {
    dir,
    ready,
    port: ready.ports.get('db') ?? setup.sidecarPort,
    problems,
    credentialFailures,
    write: (file, text) => writeFile(join(dir, file), text),
    async admin(path) {
      const response = await fetch(`http://127.0.0.1:${ready.adminPort}${path}`);
      return { status: response.status, body: await response.text() };
    },
    stop: cleanUp,
  };
}

export { eventually as waitFor } from '../../../testing/async-checks.js';
