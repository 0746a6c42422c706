import type { V1Pod } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { issueCa, issueServingCertificate } from '../../operator/certs/certificate-authority.js';
import { StaticCertificateSource } from '../../operator/certs/certificate-source.js';
import { appPod, injectionContext, postgresResource } from '../../operator/admission/testing/injection-fixtures.js';
import { startWebhookServer, type WebhookServer } from '../../operator/admission/webhook-server.js';
import { directBurst, h2Transport, http1Transport, type WebhookTransport } from './admission-review-client.js';

const DAY = 86_400_000;

describe('bench transports against the real webhook server', () => {
  let server: WebhookServer;
  let caPem: string;
  let registry: Registry;

  beforeAll(async () => {
    const now = new Date();
    const ca = await issueCa({ commonName: 'bench-ca', now, validityMs: DAY });
    const serving = await issueServingCertificate({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now, validityMs: DAY });
    caPem = ca.certPem;
    registry = new Registry();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: new StaticCertificateSource({ cert: serving.certPem, key: serving.keyPem }),
      injection: () => injectionContext(),
      clusterView: () => ({ identities: [], resources: [postgresResource('orders-db', 15432)], policies: [], secrets: [] }),
      logger: silentLogger(),
      registry,
    });
  });

  afterAll(async () => {
    await server.close(100);
  });

  const pods = (prefix: string): V1Pod[] => Array.from({ length: 20 }, (_, index) => {
    const pod = appPod() as V1Pod;
    return { ...pod, metadata: { ...pod.metadata, name: `${prefix}-${index}` } };
  });

  it.each([
    ['h2', (url: string) => h2Transport(url, caPem)],
    ['http1', (url: string) => http1Transport(url, caPem, 20)],
  ])('%s: every concurrent review comes back patched and timed', async (protocol, open: (url: string) => WebhookTransport) => {
    const transport = open(`https://127.0.0.1:${server.port}`);
    try {
      expect(transport.protocol).toBe(protocol);
      const result = await directBurst(transport, 'payments', pods(protocol));
      expect(result.patched).toBe(20);
      expect(result.latency.count).toBe(20);
      expect(result.latency.p99).toBeGreaterThan(0);
    } finally {
      transport.close();
    }
  });

  it('h2 fails loudly on a path the webhook does not serve', async () => {
    const transport = h2Transport(`https://127.0.0.1:${server.port}`, caPem);
    try {
      expect((await transport.post('/nowhere', '{}')).status).toBe(404);
    } finally {
      transport.close();
    }
  });
});
