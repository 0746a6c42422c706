// `gatehouse operator`: runs the operator against a cluster (in-cluster, or the kubeconfig given),
// prints `ready` once its informers synced and its servers listen, and drains on SIGTERM.
// Configuration enters here (flags, POD_NAME, the approval notification URLs' env) and is passed
// down to startOperator.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import { createLogger } from '../../api/logging/logger.js';
import type { NotificationTargets } from '../../operator/approvals/approval-notifier.js';
import { startOperator, type IdentityVerification, type RecordingOptions, type ServingCertificateFiles } from '../../operator/operator.js';
import type { CliCommand, CliIO } from '../io.js';

const OPTIONS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string', default: 'gatehouse-system' },
  'service-name': { type: 'string', default: 'gatehouse-operator' },
  'leader-elect': { type: 'boolean', default: false },
  host: { type: 'string', default: '0.0.0.0' },
  'control-plane-port': { type: 'string', default: '15010' },
  'webhook-port': { type: 'string', default: '9443' },
  'admin-port': { type: 'string', default: '9464' },
  'identity-verification': { type: 'string', default: 'token-review' },
  'service-account-issuer': { type: 'string' },
  'control-plane-address': { type: 'string' },
  'sidecar-image': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'tls-ca-file': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  'drain-seconds': { type: 'string', default: '10' },
  'recordings-dir': { type: 'string' },
  'recordings-retention-days': { type: 'string' },
  'recordings-max-bytes': { type: 'string' },
  'recordings-key-secret': { type: 'string' },
  'approvals-webhook-url': { type: 'string' },
  'approvals-slack-url': { type: 'string' },
  'operator-user': { type: 'string' },
  'admission-warmup-reviews': { type: 'string' },
} as const;

/** Env names of the notification URLs: the chart sets them from a Secret, since the URLs carry tokens. */
export const APPROVALS_WEBHOOK_URL_ENV = 'GATEHOUSE_APPROVALS_WEBHOOK_URL';
export const APPROVALS_SLACK_URL_ENV = 'GATEHOUSE_APPROVALS_SLACK_URL';

function port(flag: string, value: string | undefined): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65535) throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--${flag} ${value} is not a port` });
  return number;
}

function identityVerification(value: string | undefined): IdentityVerification {
  if (value === 'token-review' || value === 'jwks') return value;
  throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--identity-verification ${value} is not token-review or jwks` });
}

/** Absent: the operator's default; 0 turns the warm-up off. */
function warmupReviews(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isInteger(number) || number < 0) {
    throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--admission-warmup-reviews ${value} is not a whole number ≥ 0 (0 turns the warm-up off)` });
  }
  return number;
}

function positiveNumber(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `--${flag} ${value} is not a positive number` });
  return number;
}

/** Recordings are stored only when a folder is given; retention limits without one would silently do nothing. */
function recordingOptions(cwd: string, values: { dir?: string; days?: string; bytes?: string; secret?: string }): RecordingOptions | undefined {
  if (values.dir === undefined) {
    const stray = values.days !== undefined ? 'retention-days' : values.bytes !== undefined ? 'max-bytes' : values.secret !== undefined ? 'key-secret' : undefined;
    if (stray) throw new GatehouseError('GH_ERR_USAGE', { detail: `--recordings-${stray} needs --recordings-dir (the folder recordings are stored in)` });
    return undefined;
  }
  const maxAgeDays = values.days === undefined ? undefined : positiveNumber('recordings-retention-days', values.days);
  const maxTotalBytes = values.bytes === undefined ? undefined : positiveNumber('recordings-max-bytes', values.bytes);
  const retention = { ...(maxAgeDays !== undefined ? { maxAgeDays } : {}), ...(maxTotalBytes !== undefined ? { maxTotalBytes } : {}) };
  return {
    dir: resolve(cwd, values.dir),
    ...(Object.keys(retention).length > 0 ? { retention } : {}),
    ...(values.secret ? { keySecretName: values.secret } : {}),
  };
}

/** `source` names where the value came from (the flag or the env variable) for the message. */
function notificationUrl(source: string, value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `${source} is not a URL` });
  }
  // The URL itself is left out of the message: incoming-webhook URLs are credentials.
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `${source} must be an http(s) URL, not ${url.protocol}` });
  return url.href;
}

/** Flags win over env; an empty value means no target. */
function notificationTargets(values: { webhook?: string; slack?: string }, env: NodeJS.ProcessEnv): NotificationTargets {
  const pick = (flag: string, value: string | undefined, envName: string) => (value !== undefined ? notificationUrl(`--${flag}`, value) : notificationUrl(envName, env[envName]));
  const webhookUrl = pick('approvals-webhook-url', values.webhook, APPROVALS_WEBHOOK_URL_ENV);
  const slackUrl = pick('approvals-slack-url', values.slack, APPROVALS_SLACK_URL_ENV);
  return { ...(webhookUrl ? { webhookUrl } : {}), ...(slackUrl ? { slackUrl } : {}) };
}

/**
 * The serving certificate from files (e.g. issued by cert-manager and mounted), all three or none:
 * without them the operator keeps its own in a Secret. The files are watched, so a renewal is served
 * without a restart; they are read once here so a wrong path fails before anything connects.
 */
async function certificatesFrom(cwd: string, files: { cert?: string; key?: string; ca?: string }): Promise<ServingCertificateFiles | undefined> {
  const given = [files.cert, files.key, files.ca].filter((file) => file !== undefined).length;
  if (given === 0) return undefined;
  if (!files.cert || !files.key || !files.ca) {
    throw new GatehouseError('GH_ERR_USAGE', { detail: 'pass all of --tls-cert-file, --tls-key-file and --tls-ca-file, or none (the operator then manages its own certificate)' });
  }
  const certificateFiles = { certFile: resolve(cwd, files.cert), keyFile: resolve(cwd, files.key), caFile: resolve(cwd, files.ca) };
  await Promise.all(Object.values(certificateFiles).map((file) => readFile(file, 'utf8')));
  return certificateFiles;
}

export const operatorCommand: CliCommand = {
  path: ['operator'],
  summary: 'run the Kubernetes operator: reconcilers (on the leader), admission webhooks, the policy discovery service, /metrics /healthz /readyz',
  usage: 'gatehouse operator [--kubeconfig FILE] [--namespace NS] [--leader-elect] [--service-name NAME] [--control-plane-port 15010] [--webhook-port 9443] [--admin-port 9464] [--recordings-dir DIR [--recordings-retention-days N] [--recordings-max-bytes N]] [--approvals-webhook-url URL] [--approvals-slack-url URL] [--operator-user USER] [--admission-warmup-reviews N]',
  async run(args: string[], io: CliIO) {
    const { values } = parseArgs({ args, options: OPTIONS });
    const logger = createLogger({ level: values['log-level'], name: 'gatehouse-operator', destination: process.stderr });
    // Validated here so a typo fails before anything connects.
    const controlPlanePort = port('control-plane-port', values['control-plane-port']);
    const webhookPort = port('webhook-port', values['webhook-port']);
    const adminPort = port('admin-port', values['admin-port']);
    const verification = identityVerification(values['identity-verification']);
    const admissionWarmupReviews = warmupReviews(values['admission-warmup-reviews']);
    const certificates = await certificatesFrom(io.cwd, { cert: values['tls-cert-file'], key: values['tls-key-file'], ca: values['tls-ca-file'] });
    const recordings = recordingOptions(io.cwd, {
      dir: values['recordings-dir'], days: values['recordings-retention-days'], bytes: values['recordings-max-bytes'], secret: values['recordings-key-secret'],
    });
    const approvalNotifications = notificationTargets({ webhook: values['approvals-webhook-url'], slack: values['approvals-slack-url'] }, process.env);
    const running = await startOperator(
      {
        ...(values.kubeconfig ? { kubeconfigPath: resolve(io.cwd, values.kubeconfig) } : {}),
        namespace: values.namespace,
        serviceName: values['service-name'],
        identity: process.env.POD_NAME ?? hostname(),
        leaderElect: values['leader-elect'],
        host: values.host,
        controlPlanePort,
        webhookPort,
        adminPort,
        ...(values['control-plane-address'] ? { controlPlaneAddress: values['control-plane-address'] } : {}),
        ...(values['sidecar-image'] ? { sidecarImage: values['sidecar-image'] } : {}),
        identityVerification: verification,
        ...(values['service-account-issuer'] ? { serviceAccountIssuer: values['service-account-issuer'] } : {}),
        ...(certificates ? { certificateFiles: certificates } : {}),
        ...(recordings ? { recordings } : {}),
        approvalNotifications,
        ...(values['operator-user'] ? { operatorUser: values['operator-user'] } : {}),
        ...(admissionWarmupReviews !== undefined ? { admissionWarmupReviews } : {}),
        logger,
        drainMs: Number(values['drain-seconds']) * 1000,
      },
      io.signal,
    );
    io.stdout(`gatehouse operator: control plane on :${running.ports.controlPlane}, webhooks on :${running.ports.webhook}, metrics on :${running.ports.admin}${values['leader-elect'] ? ', reconcilers on the Lease holder' : ''}\nready\n`);
    if (!io.signal.aborted) await new Promise((done) => io.signal.addEventListener('abort', done, { once: true }));
    await running.close();
    return 0;
  },
};
