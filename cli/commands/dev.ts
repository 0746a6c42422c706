// `gatehouse dev`: local mode. Runs the control plane and the sidecar for one identity in one process
// from a folder of manifests, prints `ready` once the sidecar applied its first snapshot, enforces
// file changes within a second, drains and exits on SIGTERM.
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import { createLogger } from '../../api/logging/logger.js';
import { runLocalMode, type LocalModeReady } from '../dev/local-mode.js';
import { formatProblem } from '../config-folder.js';
import type { CliCommand, CliIO } from '../io.js';

const DEMO_IDENTITY = 'ci-runner';

function hashKeyFrom(env: NodeJS.ProcessEnv): Uint8Array | undefined {
  const value = env.GATEHOUSE_MASKING_HASH_KEY;
  return value ? Buffer.from(value, 'utf8') : undefined;
}

function describeCredentialFailure(resource: string, error: Error): string {
  const what = isGatehouseError(error) ? `error ${error.code}: ${error.message}` : `error: ${error.message}`;
  return `gatehouse dev: no credential for ${resource}: ${what}\n`;
}

function describeReady(ready: LocalModeReady, demo: boolean): string {
  const lines: string[] = [];
  const { identity } = ready.snapshot;
  lines.push(`gatehouse dev: sidecar for identity ${identity.metadata.name} (policy ${ready.snapshot.version})`);
  for (const entry of ready.snapshot.resources) {
    const name = entry.resource.metadata.name;
    const port = ready.ports.get(name);
    if (port === undefined) {
      lines.push(`  ${name}: ${entry.resource.spec.protocol} is not enforced by this sidecar yet (skipped)`);
      continue;
    }
    const database = entry.resource.spec.database ?? 'postgres';
    lines.push(`  ${name}: psql "host=127.0.0.1 port=${port} dbname=${database} user=${identity.metadata.name} sslmode=disable"`);
    if (!entry.credential && entry.resource.spec.credentials.strategy !== 'none') {
      lines.push(`  ${name}: no credential could be issued (see the error above), so its sessions are refused`);
    }
  }
  lines.push(`  metrics: http://127.0.0.1:${ready.adminPort}/metrics   health: /healthz /readyz`);
  const recordings = dirname(ready.recordingKeys);
  lines.push(`  recordings: gatehouse sessions list --dir ${recordings}   (verify: add --key ${ready.recordingKeys})`);
  if (demo) {
    lines.push('', 'Demo database loaded (customers, orders, invoices). Try, in psql:');
    lines.push('  SELECT name, email, card_number FROM customers LIMIT 5;   -- emails and cards masked');
    lines.push('  DROP TABLE orders;                                         -- blocked: ERROR 42501 naming the rule');
    lines.push('  WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone;  -- a hidden delete, blocked');
    lines.push('  SELECT count(*) FROM orders;                               -- still works on the same connection');
    lines.push('Then edit config/samples/policies/*.yaml: the running sidecar enforces the change within a second.');
  }
  return `${lines.join('\n')}\n`;
}

export const devCommand: CliCommand = {
  path: ['dev'],
  summary: 'run the control plane and a sidecar locally from a folder of manifests (--demo: with an embedded demo database)',
  usage: 'gatehouse dev --config DIR --identity NAME [--demo]',
  async run(args: string[], io: CliIO) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        identity: { type: 'string' },
        namespace: { type: 'string' },
        demo: { type: 'boolean', default: false },
        'admin-host': { type: 'string', default: '127.0.0.1' },
        'admin-port': { type: 'string', default: '9464' },
        recordings: { type: 'string', default: '.gatehouse/recordings' },
        'log-level': { type: 'string', default: 'info' },
        'drain-seconds': { type: 'string', default: '10' },
      },
    });
    if (!values.config) throw new GatehouseError('GH_ERR_USAGE', { detail: 'gatehouse dev needs --config DIR' });
    const identity = values.identity ?? (values.demo ? DEMO_IDENTITY : undefined);
    if (!identity) throw new GatehouseError('GH_ERR_USAGE', { detail: 'gatehouse dev needs --identity NAME' });
    const adminPort = Number(values['admin-port']);
    if (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--admin-port ${values['admin-port']} is not a port` });
    }
    const logger = createLogger({ level: values['log-level']!, name: 'gatehouse-dev', destination: process.stderr });
    const hashKey = hashKeyFrom(process.env);
    await runLocalMode(
      {
        configDir: resolve(io.cwd, values.config),
        identity,
        ...(values.namespace ? { namespace: values.namespace } : {}),
        adminHost: values['admin-host']!,
        adminPort,
        recordingsDir: resolve(io.cwd, values.recordings!),
        ...(hashKey ? { hashKey } : {}),
        demo: values.demo!,
        logger,
        drainMs: Number(values['drain-seconds']) * 1000,
      },
      {
        onReady: (ready) => io.stdout(`${describeReady(ready, values.demo!)}ready\n`),
        onProblems: (problems) => problems.forEach((problem) => io.stderr(`${formatProblem(problem)}\n`)),
        onCredentialFailure: (resource, error) => io.stderr(describeCredentialFailure(resource, error)),
      },
      io.signal,
    );
    return 0;
  },
};
