// `gatehouse sidecar`: the sidecar as it runs inside a workload pod. It connects to the operator's
// policy discovery service over TLS verified against the operator's CA (never plaintext), proves
// its pod with the projected ServiceAccount token (re-read at every reconnect, as the kubelet
// rotates it), serves each ProtectedResource on 127.0.0.1 once the first snapshot is applied,
// prints `ready`, and drains on SIGTERM. Session recordings are spooled to disk and uploaded to the
// operator on the same connection settings. The injection webhook starts it with flags or env.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import type { CliCommand, CliIO } from '../io.js';

export const SIDECAR_VERSION = 'gatehouse-sidecar';
export const DEFAULT_SIDECAR_ADMIN_PORT = 15090;
/** The injection webhook mounts an emptyDir here, so the spool outlives a sidecar restart within the pod. */
export const DEFAULT_RECORDING_SPOOL = '/var/run/gatehouse/spool';

/** Everything `gatehouse sidecar` runs with, resolved from flags and env (flags win). */
export interface InPodSidecarSettings {
  readonly controlPlane: string;
  readonly caPem: string;
  /** Where the CA came from, for messages: a file path or the env variable's name. */
  readonly caSource: string;
  readonly tokenFile: string;
  readonly nodeId: string;
  readonly adminHost: string;
  readonly adminPort: number;
  /** Session events wait here until the operator acknowledges them. */
  readonly recordingSpool: string;
  readonly hashKey?: Uint8Array;
  readonly logLevel: string;
  readonly drainMs: number;
}

const OPTIONS = {
  'control-plane': { type: 'string' },
  'ca-file': { type: 'string' },
  'token-file': { type: 'string' },
  'node-id': { type: 'string' },
  'admin-port': { type: 'string' },
  'admin-host': { type: 'string', default: '0.0.0.0' },
  'recording-spool': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  'drain-seconds': { type: 'string', default: '10' },
} as const;

function controlPlaneAddress(value: string | undefined): string {
  if (!value) throw new GatehouseError('GH_ERR_SIDECAR_NO_CONTROL_PLANE');
  const match = /^(.+):(\d+)$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) throw new GatehouseError('GH_ERR_SIDECAR_BAD_ADDRESS', { address: value });
  return value;
}

async function controlPlaneCa(caFile: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<{ pem: string; source: string }> {
  let pem: string;
  let source: string;
  if (caFile) {
    source = resolve(cwd, caFile);
    try {
      pem = await readFile(source, 'utf8');
    } catch (error) {
      throw new GatehouseError('GH_ERR_SIDECAR_CA_INVALID', { source, detail: (error as NodeJS.ErrnoException).code ?? (error as Error).message }, { cause: error });
    }
  } else if (env.GATEHOUSE_CONTROL_PLANE_CA) {
    source = 'GATEHOUSE_CONTROL_PLANE_CA';
    pem = env.GATEHOUSE_CONTROL_PLANE_CA;
  } else {
    throw new GatehouseError('GH_ERR_SIDECAR_NO_CA');
  }
  try {
    // Parsed here so a wrong value fails at startup with its source named, not as a TLS error at every reconnect.
    new X509Certificate(pem);
  } catch (error) {
    throw new GatehouseError('GH_ERR_SIDECAR_CA_INVALID', { source, detail: 'not a PEM certificate' }, { cause: error });
  }
  return { pem, source };
}

function nodeIdOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const nodeId = flag ?? (env.POD_NAMESPACE && env.POD_NAME ? `${env.POD_NAMESPACE}/${env.POD_NAME}` : undefined);
  if (!nodeId) throw new GatehouseError('GH_ERR_SIDECAR_NO_NODE_ID');
  if (!/^[^/\s]+\/[^/\s]+$/.test(nodeId)) throw new GatehouseError('GH_ERR_SIDECAR_BAD_NODE_ID', { nodeId });
  return nodeId;
}

function portOf(value: string): number {
  const port = Number(value);
  if (value.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--admin-port ${value} is not a port` });
  }
  return port;
}

/** Reads the token as the client does at every (re)connect; an empty file counts as unreadable. */
export async function readToken(path: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    throw new GatehouseError('GH_ERR_SIDECAR_TOKEN_FILE', { path, detail: (error as NodeJS.ErrnoException).code ?? (error as Error).message }, { cause: error });
  }
  if (!token) throw new GatehouseError('GH_ERR_SIDECAR_TOKEN_FILE', { path, detail: 'the file is empty' });
  return token;
}

/** Resolves flags and env into settings; throws a GH_ERR_* naming what is missing or wrong. */
export async function sidecarSettings(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<InPodSidecarSettings> {
  const { values } = parseArgs({ args, options: OPTIONS });
  const controlPlane = controlPlaneAddress(values['control-plane'] ?? env.GATEHOUSE_CONTROL_PLANE);
  const ca = await controlPlaneCa(values['ca-file'], env, cwd);
  const tokenPath = values['token-file'] ?? env.GATEHOUSE_TOKEN_FILE;
  if (!tokenPath) throw new GatehouseError('GH_ERR_SIDECAR_NO_TOKEN_FILE');
  const tokenFile = resolve(cwd, tokenPath);
  await readToken(tokenFile); // a missing mount is a misconfigured pod: say so now rather than retry forever
  const drainSeconds = Number(values['drain-seconds']);
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) {
    throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--drain-seconds ${values['drain-seconds']} is not a number of seconds` });
  }
  const hashKey = env.GATEHOUSE_MASKING_HASH_KEY;
  return {
    controlPlane,
    caPem: ca.pem,
    caSource: ca.source,
    tokenFile,
    nodeId: nodeIdOf(values['node-id'], env),
    adminHost: values['admin-host'],
    adminPort: portOf(values['admin-port'] ?? env.GATEHOUSE_ADMIN_PORT ?? String(DEFAULT_SIDECAR_ADMIN_PORT)),
    recordingSpool: resolve(cwd, values['recording-spool'] ?? env.GATEHOUSE_RECORDING_SPOOL ?? DEFAULT_RECORDING_SPOOL),
    ...(hashKey ? { hashKey: Buffer.from(hashKey, 'utf8') } : {}),
    logLevel: values['log-level'],
    drainMs: drainSeconds * 1000,
  };
}

async function runSidecar(settings: InPodSidecarSettings, io: CliIO): Promise<void> {
  // Loaded here, not at the top: the other commands never need the proxy, gRPC or the SQL parser.
  const [{ createLogger }, { loadDiscoveryProto }, { loadSqlParser }, { createSidecarMetrics }, { startSidecarRuntime, unlessAborted }] = await Promise.all([
    import('../../api/logging/logger.js'),
    import('../../api/proto/discovery-proto.js'),
    import('../../api/sql/classify.js'),
    import('../../sidecar/metrics/sidecar-metrics.js'),
    import('../../sidecar/sidecar-runtime.js'),
  ]);
  const logger = createLogger({ level: settings.logLevel, name: 'gatehouse-sidecar', destination: process.stderr });
  if (!settings.hashKey) logger.warn('GATEHOUSE_MASKING_HASH_KEY is not set: masked hashes differ between sidecar processes');
  await loadSqlParser();
  const runtime = await startSidecarRuntime({
    proto: loadDiscoveryProto(),
    controlPlane: {
      address: settings.controlPlane,
      transport: { kind: 'tls', caPem: settings.caPem },
      nodeId: settings.nodeId,
      token: () => readToken(settings.tokenFile),
      sidecarVersion: SIDECAR_VERSION,
    },
    logger,
    metrics: createSidecarMetrics(),
    // Uploaded over ReportEvents with the same TLS and token as the discovery stream.
    recording: { spoolDir: settings.recordingSpool },
    // Held statements are decided in the cluster: RequestApproval to the operator, same TLS and token.
    approvals: 'control-plane',
    ...(settings.hashKey ? { hashKey: settings.hashKey } : {}),
    adminHost: settings.adminHost,
    adminPort: settings.adminPort,
  });
  try {
    const snapshot = await unlessAborted(runtime.firstApplied, io.signal);
    if (snapshot) {
      const ports = [...runtime.portsOf(snapshot)].map(([name, port]) => `${name} on 127.0.0.1:${port}`);
      io.stdout(`gatehouse sidecar: node ${settings.nodeId}, policy snapshot ${snapshot.version}, admin port ${runtime.adminPort}; serving ${ports.join(', ') || 'no resources'}\nready\n`);
      await unlessAborted(new Promise<never>(() => undefined), io.signal);
    }
    logger.info('shutting down: draining sessions');
  } finally {
    await runtime.stop(settings.drainMs);
  }
}

export const sidecarCommand: CliCommand = {
  path: ['sidecar'],
  summary: 'run the sidecar in a pod: policy and credentials from the operator over TLS, resources served on 127.0.0.1',
  usage: 'gatehouse sidecar [--control-plane HOST:PORT --ca-file PATH --token-file PATH --recording-spool DIR ...]',
  async run(args: string[], io: CliIO) {
    await runSidecar(await sidecarSettings(args, process.env, io.cwd), io);
    return 0;
  },
};
