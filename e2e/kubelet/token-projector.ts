// Keeps a pod's projected ServiceAccount token files current, as the kubelet does: each token is
// requested through TokenRequest bound to the pod (so it dies with it), written atomically under the
// stand-in volume folder, and re-requested at 80% of its lifetime.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../../api/logging/logger.js';
import type { ProjectedToken } from './sidecar-spec.js';

export interface TokenProjectorOptions {
  readonly api: Pick<CoreV1Api, 'createNamespacedServiceAccountToken'>;
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly pod: { readonly name: string; readonly uid: string };
  readonly volumeRoot: string;
  readonly logger: Logger;
  /** Delay before retrying a failed refresh; the previous token stays in place meanwhile. */
  readonly retryMs?: number;
}

/** The share of a token's lifetime after which it is refreshed (the kubelet's rule). */
export const REFRESH_AT_FRACTION = 0.8;

export class TokenProjector {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** How many tokens were written, refreshes included; tests watch it grow. */
  writes = 0;

  constructor(private readonly options: TokenProjectorOptions) {}

  /** Writes every token once; rejects if one cannot be had, since the container must not start without it. */
  async start(tokens: readonly ProjectedToken[]): Promise<void> {
    await Promise.all(tokens.map((token) => this.refresh(token)));
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  hostPath(token: ProjectedToken): string {
    return path.join(this.options.volumeRoot, token.volumeName, token.relativePath);
  }

  private async refresh(token: ProjectedToken): Promise<void> {
    const { api, namespace, serviceAccountName, pod } = this.options;
    const issuedAt = Date.now();
    const response = await api.createNamespacedServiceAccountToken({
      name: serviceAccountName,
      namespace,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: [...token.audiences],
          expirationSeconds: token.expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
        },
      },
    });
    const value = response.status?.token;
    if (!value) throw new Error(`TokenRequest for ${namespace}/${serviceAccountName} returned no token`);
    await writeAtomically(this.hostPath(token), value);
    this.writes++;
    const expiresAt = response.status?.expirationTimestamp ? new Date(response.status.expirationTimestamp).getTime() : issuedAt + token.expirationSeconds * 1000;
    this.schedule(token, Math.max(0, (expiresAt - issuedAt) * REFRESH_AT_FRACTION));
  }

  private schedule(token: ProjectedToken, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.refresh(token).catch((error: unknown) => {
        this.options.logger.warn({ err: error, file: token.containerPath }, 'token refresh failed; retrying');
        this.schedule(token, this.options.retryMs ?? 1000);
      });
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }
}

/** Readers never see a half-written token: write beside it, then rename over it. */
export async function writeAtomically(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await rename(temporary, file);
}
