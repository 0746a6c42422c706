// How the operator reaches the identity endpoints of the cluster it runs in: the API server
// address from the pod's environment, its CA and the operator's own (rotating) token from the
// mounted ServiceAccount folder. Called at startup by the edge that builds the verifiers.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../../api/errors.js';
import { getJson } from './https-client.js';
import type { RemoteJwksOptions } from './key-set.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ApiServerAccess {
  readonly server: URL;
  readonly ca: Buffer;
  /** Re-reads the token file each call: the kubelet rotates it in place. */
  readonly bearerToken: () => Promise<string>;
}

export async function inClusterApiServer(
  env: Readonly<Record<string, string | undefined>>,
  dir: string = SERVICE_ACCOUNT_DIR,
): Promise<ApiServerAccess> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw notInCluster('KUBERNETES_SERVICE_HOST is not set');
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  const tokenFile = join(dir, 'token');
  const ca = await readFile(join(dir, 'ca.crt')).catch(() => {
    throw notInCluster(`cannot read ${join(dir, 'ca.crt')}`);
  });
  const bearerToken = async (): Promise<string> => {
    const token = await readFile(tokenFile, 'utf8').catch(() => {
      throw notInCluster(`cannot read ${tokenFile}`);
    });
    return token.trim();
  };
  await bearerToken();
  return { server, ca, bearerToken };
}

function notInCluster(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_INVALID_ARGUMENT', {
    detail: `in-cluster identity verification needs the pod's ServiceAccount: ${detail}`,
  });
}

/** The cluster's ServiceAccount issuer, as the API server announces it (the tokens' iss). */
export async function discoverClusterIssuer(api: ApiServerAccess, timeoutMs?: number): Promise<string> {
  const url = new URL('/.well-known/openid-configuration', api.server);
  let document: unknown;
  try {
    document = await getJson(url, { ca: api.ca, bearerToken: api.bearerToken, timeoutMs });
  } catch (error) {
    throw new GatehouseError('GH_ERR_OIDC_DISCOVERY', {
      issuer: 'of the cluster',
      detail: error instanceof Error ? error.message : 'request failed',
    }, { cause: error });
  }
  const issuer = typeof document === 'object' && document !== null ? (document as { issuer?: unknown }).issuer : undefined;
  if (typeof issuer !== 'string' || issuer.length === 0) {
    throw new GatehouseError('GH_ERR_OIDC_DISCOVERY', { issuer: 'of the cluster', detail: 'the document has no issuer' });
  }
  return issuer;
}

// The discovery document's jwks_uri is the issuer's public URL, often unreachable from inside;
// the API server serves the same keys itself.
export function clusterJwks(api: ApiServerAccess): RemoteJwksOptions {
  return { url: new URL('/openid/v1/jwks', api.server), ca: api.ca, bearerToken: api.bearerToken };
}
