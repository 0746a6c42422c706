import { X509Certificate } from 'node:crypto';
import { silentLogger } from '../../api/logging/logger.js';
import { issueCa, issueServingCertificate, splitPemBundle } from './certificate-authority.js';
import type { ServingCertificate } from './certificate-source.js';
import { InMemoryTlsCluster } from './testing/in-memory-tls-cluster.js';
import { DEFAULT_LIFETIMES, WebhookCertManager, type WebhookCertManagerOptions } from './webhook-cert-manager.js';

const NAMESPACE = 'gatehouse-system';
const SECRET = `${NAMESPACE}/gatehouse-webhook-tls`;
const DAY = 86_400_000;
const START = new Date('2026-01-01T00:00:00Z');

function setup() {
  const cluster = new InMemoryTlsCluster();
  cluster.addWebhookConfiguration('MutatingWebhookConfiguration', 'gatehouse', ['pods.gatehouse.dev', 'pods-namespaced.gatehouse.dev']);
  cluster.addWebhookConfiguration('ValidatingWebhookConfiguration', 'gatehouse', ['kinds.gatehouse.dev']);
  const clock = { now: START };
  const manager = (overrides: Partial<WebhookCertManagerOptions> = {}) =>
    new WebhookCertManager({
      cluster,
      namespace: NAMESPACE,
      serviceName: 'gatehouse-webhook',
      mutatingWebhookConfigurations: ['gatehouse'],
      validatingWebhookConfigurations: ['gatehouse'],
      now: () => clock.now,
      logger: silentLogger(),
      ...overrides,
    });
  return { cluster, clock, manager };
}

function stored(cluster: InMemoryTlsCluster): Record<string, string> {
  return cluster.secrets.get(SECRET)!.data;
}

function issuerOf(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function expectCaBundlesEverywhere(cluster: InMemoryTlsCluster, bundle: string): void {
  const encoded = Buffer.from(bundle).toString('base64');
  expect(cluster.caBundles('MutatingWebhookConfiguration', 'gatehouse')).toEqual([encoded, encoded]);
  expect(cluster.caBundles('ValidatingWebhookConfiguration', 'gatehouse')).toEqual([encoded]);
}

describe('WebhookCertManager', () => {
  it('creates CA and serving certificate in the Secret, patches every caBundle and signals the pair', async () => {
    const { cluster, manager } = setup();
    const certs = manager();
    const changes: ServingCertificate[] = [];
    certs.onChange((certificate) => changes.push(certificate));
    const result = await certs.reconcile();
    expect(result).toMatchObject({ action: 'created', missing: [] });
    expect(result.patched).toEqual(['MutatingWebhookConfiguration/gatehouse', 'ValidatingWebhookConfiguration/gatehouse']);
    const data = stored(cluster);
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const serving = new X509Certificate(data['tls.crt']!);
    const ca = issuerOf(splitPemBundle(data['ca.crt']!)[0]!);
    expect(ca.ca).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.subjectAltName).toBe(
      'DNS:gatehouse-webhook.gatehouse-system.svc, DNS:gatehouse-webhook.gatehouse-system.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1',
    );
    expect(serving.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(new Date(serving.validTo).getTime() - START.getTime()).toBe(DEFAULT_LIFETIMES.servingValidityMs);
    expectCaBundlesEverywhere(cluster, data['ca.crt']!);
    expect(changes).toEqual([{ cert: data['tls.crt'], key: data['tls.key'] }]);
  });

  it('reuses a valid Secret without writing anything (another replica starting)', async () => {
    const { cluster, manager } = setup();
    await manager().reconcile();
    const writes = cluster.writes.length;
    const replica = manager();
    expect(await replica.reconcile()).toMatchObject({ action: 'reused', patched: [] });
    expect(cluster.writes).toHaveLength(writes);
    expect(replica.current().cert).toBe(stored(cluster)['tls.crt']);
  });

  it('rotates the serving certificate within rotateBefore of expiry, keeping the CA and caBundle', async () => {
    const { cluster, clock, manager } = setup();
    const certs = manager();
    await certs.reconcile();
    const before = stored(cluster);
    const changes: ServingCertificate[] = [];
    certs.onChange((certificate) => changes.push(certificate));
    clock.now = new Date(START.getTime() + DEFAULT_LIFETIMES.servingValidityMs - DEFAULT_LIFETIMES.servingRotateBeforeMs - DAY);
    expect((await certs.reconcile()).action).toBe('reused');
    clock.now = new Date(START.getTime() + DEFAULT_LIFETIMES.servingValidityMs - DEFAULT_LIFETIMES.servingRotateBeforeMs + DAY);
    const result = await certs.reconcile();
    expect(result).toMatchObject({ action: 'serving-rotated', patched: [] });
    expect(result.reason).toMatch(/within its rotation window/);
    const after = stored(cluster);
    expect(after['ca.crt']).toBe(before['ca.crt']);
    expect(after['tls.crt']).not.toBe(before['tls.crt']);
    expect(changes).toEqual([{ cert: after['tls.crt'], key: after['tls.key'] }]);
  });

  it('rotates the CA before it expires, trusting old and new CA until the old one expires', async () => {
    const { cluster, clock, manager } = setup();
    const certs = manager();
    await certs.reconcile();
    const oldCa = stored(cluster)['ca.crt']!;
    clock.now = new Date(START.getTime() + DEFAULT_LIFETIMES.caValidityMs - DEFAULT_LIFETIMES.caRotateBeforeMs + DAY);
    const result = await certs.reconcile();
    expect(result.action).toBe('ca-rotated');
    const data = stored(cluster);
    const bundle = splitPemBundle(data['ca.crt']!);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]!.trim()).toBe(oldCa.trim());
    expect(new X509Certificate(data['tls.crt']!).verify(issuerOf(bundle[0]!).publicKey)).toBe(true);
    expectCaBundlesEverywhere(cluster, data['ca.crt']!);
    // Once the old CA has expired it leaves the bundle; the serving certificate, long expired by
    // then in this jump through time, is re-issued on the way.
    clock.now = new Date(START.getTime() + DEFAULT_LIFETIMES.caValidityMs - 5 * DAY);
    expect(await certs.reconcile()).toMatchObject({ action: 'reissued', reason: expect.stringMatching(/serving certificate expired at/) });
    expect(splitPemBundle(stored(cluster)['ca.crt']!)).toHaveLength(2);
    clock.now = new Date(START.getTime() + DEFAULT_LIFETIMES.caValidityMs + DAY);
    const pruned = await certs.reconcile();
    expect(pruned.action).toBe('bundle-pruned');
    expect(splitPemBundle(stored(cluster)['ca.crt']!)).toHaveLength(1);
    expectCaBundlesEverywhere(cluster, stored(cluster)['ca.crt']!);
  });

  it('re-issues the serving certificate when tls.crt is replaced by one from another CA', async () => {
    const { cluster, manager } = setup();
    const certs = manager();
    await certs.reconcile();
    const foreignCa = await issueCa({ commonName: 'mallory', now: START, validityMs: 365 * DAY });
    const foreign = await issueServingCertificate({
      ca: foreignCa, dnsNames: certs.dnsNames, ipAddresses: certs.ipAddresses, now: START, validityMs: 30 * DAY,
    });
    const ca = stored(cluster)['ca.crt'];
    cluster.tamper(NAMESPACE, 'gatehouse-webhook-tls', (data) => {
      data['tls.crt'] = foreign.certPem;
      data['tls.key'] = foreign.keyPem;
    });
    const result = await certs.reconcile();
    expect(result).toMatchObject({ action: 'reissued', reason: 'the serving certificate is not signed by the current CA' });
    expect(stored(cluster)['ca.crt']).toBe(ca);
    expect(stored(cluster)['tls.crt']).not.toBe(foreign.certPem);
    expect(certs.current().cert).toBe(stored(cluster)['tls.crt']);
  });

  it('starts over with a new CA when the CA key no longer matches, dropping the old CA from the bundle', async () => {
    const { cluster, manager } = setup();
    const certs = manager();
    await certs.reconcile();
    const oldCa = stored(cluster)['ca.crt'];
    const other = await issueCa({ commonName: 'other', now: START, validityMs: 365 * DAY });
    cluster.tamper(NAMESPACE, 'gatehouse-webhook-tls', (data) => {
      data['ca.key'] = other.keyPem;
    });
    const result = await certs.reconcile();
    expect(result).toMatchObject({ action: 'reissued', reason: 'the CA key does not match the CA certificate' });
    const bundle = splitPemBundle(stored(cluster)['ca.crt']!);
    expect(bundle).toHaveLength(1);
    expect(bundle[0]).not.toBe(oldCa);
    expectCaBundlesEverywhere(cluster, stored(cluster)['ca.crt']!);
  });

  it('re-issues when the serving certificate lacks a required name (Service renamed)', async () => {
    const { manager } = setup();
    await manager().reconcile();
    const renamed = manager({ serviceName: 'gatehouse-admission' });
    const result = await renamed.reconcile();
    expect(result).toMatchObject({ action: 'reissued', reason: 'the serving certificate does not cover gatehouse-admission.gatehouse-system.svc' });
  });

  it('patches a caBundle someone changed back', async () => {
    const { cluster, manager } = setup();
    const certs = manager();
    await certs.reconcile();
    const configuration = cluster.configurations.get('ValidatingWebhookConfiguration/gatehouse')!;
    configuration.webhooks[0]!.clientConfig.caBundle = Buffer.from('stale').toString('base64');
    expect(await certs.reconcile()).toMatchObject({ action: 'reused', patched: ['ValidatingWebhookConfiguration/gatehouse'] });
    expectCaBundlesEverywhere(cluster, stored(cluster)['ca.crt']!);
  });

  it('reports a webhook configuration that does not exist without failing', async () => {
    const { manager } = setup();
    const result = await manager({ validatingWebhookConfigurations: ['gatehouse', 'absent'] }).reconcile();
    expect(result.missing).toEqual(['ValidatingWebhookConfiguration/absent']);
  });

  it('converges when two replicas create the Secret at once: both serve what was stored', async () => {
    const { cluster, manager } = setup();
    const [first, second] = [manager(), manager()];
    const results = await Promise.all([first.reconcile(), second.reconcile()]);
    expect(results.map((result) => result.action).sort()).toEqual(['created', 'reused']);
    expect(first.current().cert).toBe(stored(cluster)['tls.crt']);
    expect(second.current().cert).toBe(stored(cluster)['tls.crt']);
    expectCaBundlesEverywhere(cluster, stored(cluster)['ca.crt']!);
  });

  it('serves a valid Secret even when patching a caBundle is refused, and reports the refusal', async () => {
    const { cluster, manager } = setup();
    await manager().reconcile();
    cluster.configurations.get('MutatingWebhookConfiguration/gatehouse')!.webhooks[0]!.clientConfig.caBundle = 'c3RhbGU=';
    cluster.patchWebhookConfiguration = async () => {
      throw new Error('forbidden: cannot patch mutatingwebhookconfigurations');
    };
    const replica = manager();
    await expect(replica.reconcile()).rejects.toThrow(/forbidden/);
    expect(replica.current().cert).toBe(stored(cluster)['tls.crt']);
  });

  it('fails with a GH_ERR code when the Secret cannot be read', async () => {
    const { cluster, manager } = setup();
    cluster.getSecret = async () => {
      throw new Error('forbidden: secrets is forbidden');
    };
    await expect(manager().reconcile()).rejects.toMatchObject({ code: 'GH_ERR_WEBHOOK_TLS_STORE' });
  });
});
