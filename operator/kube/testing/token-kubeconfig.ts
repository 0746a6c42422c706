// A kubeconfig for a test API server on loopback: one cluster at `url` (its self-signed TLS not
// verified) and a user presenting a bearer token, which the test servers check.
import { KubeConfig } from '@kubernetes/client-node';

export function tokenKubeConfig(url: string, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return config;
}
