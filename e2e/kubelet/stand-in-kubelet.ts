// A stand-in kubelet for e2e tests where no real node can run: it watches Pods on the API server and,
// for each pod with an injected Gatehouse sidecar, runs that sidecar as a local process with the env,
// args and projected token the pod spec gives it, and reports the pod's status like a kubelet.
// App containers are not run: the tests act as the app and connect to the sidecar on 127.0.0.1.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type Informer,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { carryTransitionTimes, failedPodStatus, runningPodStatus } from './pod-status.js';
import { SidecarProcess, type ProcessExit, type SidecarState } from './sidecar-process.js';
import { PodSpecError, buildSidecarSpec, findSidecarContainer, type SidecarSpec } from './sidecar-spec.js';
import { TokenProjector, writeAtomically } from './token-projector.js';

export interface StandInKubeletOptions {
  readonly kubeconfigPath: string;
  /** The checkout whose dist/cli/main.js runs the sidecar by default. */
  readonly repoRoot: string;
  /** Watch one namespace; all namespaces when absent. */
  readonly namespace?: string;
  /**
   * Image → argv prefix standing in for the image (the container args follow it). An image is
   * looked up as written, then without tag or digest, then as `*`. Defaults to every image running
   * `node <repoRoot>/dist/cli/main.js`; when given, it replaces that default.
   */
  readonly imageCommands?: Readonly<Record<string, readonly string[]>>;
  readonly logger: Logger;
  readonly nodeName?: string;
  /** Env values set instead of the pod's, e.g. { GATEHOUSE_CONTROL_PLANE: '127.0.0.1:PORT' } (no cluster DNS here). */
  readonly envOverrides?: Readonly<Record<string, string>>;
  /** Folder for the pods' volumes and logs; a fresh temp folder (removed on stop) when absent. */
  readonly workDir?: string;
  readonly probeIntervalMs?: number;
  readonly restartBackoffMs?: number;
  /** Upper bound on a pod's termination grace period, so a stuck process cannot stall a test. */
  readonly maxGraceMs?: number;
  /** How long a TokenRequest may keep failing (e.g. the ServiceAccount not created yet) before the pod fails. */
  readonly tokenRetryMs?: number;
}

export interface PodProcessView {
  readonly pid: number | undefined;
  readonly adminPort: number;
  readonly logFile: string;
  /** The folder standing in for the pod's projected volumes (volume V at `${volumeRoot}/V`). */
  readonly volumeRoot: string;
  readonly state: SidecarState | undefined;
  readonly failure: { readonly reason: string; readonly message: string } | undefined;
  /** Everything the process (and its restarts) printed on stdout and stderr. */
  logs(): string;
  /** Settles when the current process exits. */
  readonly exited: Promise<ProcessExit>;
}

export interface StandInKubelet {
  podProcess(namespace: string, name: string): PodProcessView | undefined;
  waitForReady(namespace: string, name: string, timeoutMs: number): Promise<PodProcessView>;
  readonly workDir: string;
  stop(): Promise<void>;
}

interface PodEntry {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly adminPort: number;
  readonly volumeRoot: string;
  readonly logFile: string;
  readonly startTime: Date;
  readonly logger: Logger;
  pod: V1Pod;
  process?: SidecarProcess;
  projector?: TokenProjector;
  failure?: { reason: string; message: string };
  terminating?: Promise<void>;
  statusWrites: Promise<void>;
}

const POD_IP = '127.0.0.1';
/** The sidecar state while its volumes are being set up (the kubelet's ContainerCreating). */
const CREATING: SidecarState = { running: false, started: false, ready: false, restartCount: 0, waitingReason: 'ContainerCreating' };

export async function startStandInKubelet(options: StandInKubeletOptions): Promise<StandInKubelet> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(options.kubeconfigPath);
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const ownsWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(path.join(os.tmpdir(), 'gatehouse-kubelet-')));
  await mkdir(path.join(workDir, 'logs'), { recursive: true });
  const kubelet = new StandInKubeletImpl(options, api, workDir);
  const listPath = options.namespace ? `/api/v1/namespaces/${options.namespace}/pods` : '/api/v1/pods';
  const list = () => (options.namespace ? api.listNamespacedPod({ namespace: options.namespace }) : api.listPodForAllNamespaces());
  const informer = makeInformer<V1Pod>(kubeConfig, listPath, list);
  kubelet.attach(informer);
  await informer.start();
  return {
    workDir,
    podProcess: (namespace, name) => kubelet.view(namespace, name),
    waitForReady: (namespace, name, timeoutMs) => kubelet.waitForReady(namespace, name, timeoutMs),
    stop: async () => {
      await kubelet.stop(informer);
      if (ownsWorkDir) await rm(workDir, { recursive: true, force: true });
    },
  };
}

class StandInKubeletImpl {
  private readonly pods = new Map<string, PodEntry>();
  private readonly usedPorts = new Set<number>();
  /** Pods (key → uid) whose start is under way, so an event arriving meanwhile does not start them twice. */
  private readonly starting = new Map<string, string>();
  private stopped = false;
  private restartTimer?: NodeJS.Timeout;

  constructor(
    private readonly options: StandInKubeletOptions,
    private readonly api: CoreV1Api,
    readonly workDir: string,
  ) {}

  attach(informer: Informer<V1Pod>): void {
    informer.on('add', (pod) => this.onPod(pod));
    informer.on('update', (pod) => this.onPod(pod));
    informer.on('delete', (pod) => this.onDeleted(pod));
    informer.on('error', (error: unknown) => {
      if (this.stopped) return;
      // The informer stops on errors other than 410; start it again after a pause, as a kubelet would.
      this.options.logger.warn({ err: error }, 'pod watch failed; restarting');
      this.restartTimer = setTimeout(() => void informer.start().catch(() => undefined), 500);
    });
  }

  view(namespace: string, name: string): PodProcessView | undefined {
    const entry = this.pods.get(`${namespace}/${name}`);
    if (!entry) return undefined;
    return {
      get pid() { return entry.process?.pid; },
      adminPort: entry.adminPort,
      logFile: entry.logFile,
      volumeRoot: entry.volumeRoot,
      get state() { return entry.process?.current; },
      get failure() { return entry.failure; },
      logs: () => entry.process?.logs() ?? '',
      get exited() { return entry.process?.exited ?? Promise.resolve({ code: null, signal: null }); },
    };
  }

  async waitForReady(namespace: string, name: string, timeoutMs: number): Promise<PodProcessView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = this.view(namespace, name);
      if (view?.failure) {
        throw new GatehouseError('GH_ERR_E2E_POD_NOT_READY', { pod: `${namespace}/${name}`, timeoutMs, detail: `it failed: ${view.failure.reason}: ${view.failure.message}` });
      }
      if (view?.state?.ready) return view;
      if (Date.now() > deadline) {
        const detail = view ? `its sidecar state is ${JSON.stringify(view.state ?? 'not started')}; last output:\n${view.logs().slice(-2000)}` : 'the stand-in kubelet has not seen it (no injected gatehouse-sidecar, or another namespace)';
        throw new GatehouseError('GH_ERR_E2E_POD_NOT_READY', { pod: `${namespace}/${name}`, timeoutMs, detail });
      }
      await delay(50);
    }
  }

  async stop(informer: Informer<V1Pod>): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await informer.stop();
    await Promise.all([...this.pods.values()].map((entry) => this.terminate(entry)));
    await Promise.all([...this.pods.values()].map((entry) => entry.statusWrites));
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped || !findSidecarContainer(pod)) return;
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const existing = this.pods.get(key);
    if (existing && existing.uid === pod.metadata?.uid) {
      existing.pod = pod;
      // Graceful deletion: stop the process, then finish the deletion as the kubelet does.
      if (pod.metadata?.deletionTimestamp) void this.terminate(existing).then(() => this.finishDeletion(existing));
      return;
    }
    if (pod.metadata?.deletionTimestamp || this.starting.get(key) === pod.metadata?.uid) return;
    if (existing) void this.terminate(existing);
    this.starting.set(key, pod.metadata?.uid ?? '');
    void this.startPod(pod)
      .catch((error: unknown) => this.options.logger.error({ err: error, pod: key }, 'cannot start pod'))
      .finally(() => {
        if (this.starting.get(key) === pod.metadata?.uid) this.starting.delete(key);
      });
  }

  private onDeleted(pod: V1Pod): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    // Deleted before its start got far: startPod sees the marker gone and gives up.
    if (this.starting.get(key) === pod.metadata?.uid) this.starting.delete(key);
    const entry = this.pods.get(key);
    if (entry && entry.uid === pod.metadata?.uid) void this.terminate(entry);
  }

  private async startPod(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? '';
    const adminPort = await this.freePort();
    if (this.starting.get(`${namespace}/${name}`) !== uid || this.stopped) {
      this.usedPorts.delete(adminPort);
      return;
    }
    const base = path.join(this.workDir, `${namespace}_${name}_${uid.slice(0, 8)}`);
    const entry: PodEntry = {
      uid, namespace, name, adminPort, pod,
      volumeRoot: path.join(base, 'volumes'),
      logFile: path.join(this.workDir, 'logs', `${namespace}_${name}_${uid.slice(0, 8)}.log`),
      startTime: new Date(),
      logger: this.options.logger.child({ pod: `${namespace}/${name}` }),
      statusWrites: Promise.resolve(),
    };
    this.pods.set(`${namespace}/${name}`, entry);
    let spec: SidecarSpec;
    let commandPrefix: readonly string[];
    try {
      spec = buildSidecarSpec(pod, { volumeRoot: entry.volumeRoot, adminPort, nodeName: this.nodeName, podIP: POD_IP, envOverrides: this.options.envOverrides });
      commandPrefix = this.commandFor(spec.image);
    } catch (error) {
      if (!(error instanceof PodSpecError)) throw error;
      this.fail(entry, error.reason, error.message);
      return;
    }
    await mkdir(entry.volumeRoot, { recursive: true });
    for (const file of spec.fieldFiles) await writeAtomically(path.join(entry.volumeRoot, file.volumeName, file.relativePath), file.content);
    if (!(await this.projectTokens(entry, spec))) return;
    if (entry.terminating) {
      entry.projector?.stop();
      return;
    }
    entry.process = new SidecarProcess({
      spec,
      commandPrefix,
      cwd: this.options.repoRoot,
      logFile: entry.logFile,
      logger: entry.logger,
      onChange: (state) => this.writeStatus(entry, () => runningPodStatus(entry.pod, state, { podIP: POD_IP, startTime: entry.startTime })),
      probeIntervalMs: this.options.probeIntervalMs ?? 200,
      restartBackoffMs: this.options.restartBackoffMs ?? 500,
      maxGraceMs: this.options.maxGraceMs ?? 5000,
    });
    entry.process.start();
  }

  /** Retries TokenRequest for a while (the ServiceAccount may not exist yet), then fails the pod. */
  private async projectTokens(entry: PodEntry, spec: SidecarSpec): Promise<boolean> {
    const projector = new TokenProjector({
      api: this.api,
      namespace: entry.namespace,
      serviceAccountName: spec.serviceAccountName,
      pod: { name: entry.name, uid: entry.uid },
      volumeRoot: entry.volumeRoot,
      logger: entry.logger,
    });
    entry.projector = projector;
    const deadline = Date.now() + (this.options.tokenRetryMs ?? 10_000);
    for (let attempt = 0; ; attempt++) {
      try {
        await projector.start(spec.tokens);
        return true;
      } catch (error) {
        if (entry.terminating || this.stopped) return false;
        if (Date.now() > deadline) {
          this.fail(entry, 'TokenRequestFailed', `cannot get the projected token of ServiceAccount ${spec.serviceAccountName}: ${describe(error)}`);
          return false;
        }
        entry.logger.warn({ err: error }, 'TokenRequest failed; retrying');
        if (attempt === 0) this.writeStatus(entry, () => runningPodStatus(entry.pod, CREATING, { podIP: POD_IP, startTime: entry.startTime }));
        await delay(500);
      }
    }
  }

  private commandFor(image: string): readonly string[] {
    const commands = this.options.imageCommands ?? { '*': [process.execPath, path.join(this.options.repoRoot, 'dist/cli/main.js')] };
    const bare = image.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
    const command = commands[image] ?? commands[bare] ?? commands['*'];
    if (!command || command.length === 0) {
      throw new PodSpecError('ErrImageNeverPull', `image ${image} has no local command in the stand-in kubelet's image map (known: ${Object.keys(commands).join(', ')})`);
    }
    return command;
  }

  private fail(entry: PodEntry, reason: string, message: string): void {
    entry.failure = { reason, message };
    entry.logger.warn({ reason, message }, 'pod cannot run');
    this.writeStatus(entry, () => failedPodStatus(reason, message, { podIP: POD_IP, startTime: entry.startTime }));
  }

  private terminate(entry: PodEntry): Promise<void> {
    entry.terminating ??= (async () => {
      entry.projector?.stop();
      await entry.process?.stop();
      this.usedPorts.delete(entry.adminPort);
      await rm(entry.volumeRoot, { recursive: true, force: true });
    })();
    return entry.terminating;
  }

  private async finishDeletion(entry: PodEntry): Promise<void> {
    try {
      await this.api.deleteNamespacedPod({ name: entry.name, namespace: entry.namespace, gracePeriodSeconds: 0, body: { preconditions: { uid: entry.uid } } });
    } catch (error) {
      if (statusCode(error) !== 404) entry.logger.warn({ err: error }, 'cannot finish pod deletion');
    }
  }

  /** Status writes of one pod are serialized, so an older state never overwrites a newer one. */
  private writeStatus(entry: PodEntry, build: () => V1PodStatus): void {
    entry.statusWrites = entry.statusWrites.then(async () => {
      if (this.pods.get(`${entry.namespace}/${entry.name}`) !== entry) return;
      const status = carryTransitionTimes(entry.pod.status?.conditions, build());
      try {
        entry.pod = await this.api.patchNamespacedPodStatus(
          { name: entry.name, namespace: entry.namespace, body: { status } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (error) {
        // A deleted pod has no status to write; anything else is logged and the next change retries.
        if (statusCode(error) !== 404) entry.logger.warn({ err: error }, 'cannot write pod status');
      }
    });
  }

  private get nodeName(): string {
    return this.options.nodeName ?? 'gatehouse-stand-in';
  }

  /** A free loopback port no other pod of this kubelet holds: each sidecar needs its own admin port. */
  private async freePort(): Promise<number> {
    for (;;) {
      const port = await new Promise<number>((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
        });
      });
      if (!this.usedPorts.has(port)) {
        this.usedPorts.add(port);
        return port;
      }
    }
  }
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
