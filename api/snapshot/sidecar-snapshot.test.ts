import { join } from 'node:path';
import { isGatehouseError } from '../errors.js';
import { loadConfigDir, loadConfigFromTexts, type GatehouseConfig } from '../manifests/config.js';
import { buildSnapshotFromConfig } from './sidecar-snapshot.js';

describe('buildSnapshotFromConfig', () => {
  let samples: GatehouseConfig;
  beforeAll(async () => {
    samples = await loadConfigDir(join(process.cwd(), 'config/samples'));
  });

  test('includes only resources a policy grants, with the policies that apply', () => {
    const snapshot = buildSnapshotFromConfig(samples, 'ci-runner', 'payments');
    expect(snapshot.resources.map((entry) => entry.resource.metadata.name)).toEqual(['orders-db']);
    expect(snapshot.resources[0]!.policies.map((policy) => policy.metadata.name)).toEqual(['baseline-guardrails', 'ci-read-only']);
    expect(snapshot.resources[0]!.credential).toEqual({ username: 'gatehouse_demo', password: 'demo-only-not-a-secret' });
  });

  test('a resource reached through a group policy alone is included', () => {
    const snapshot = buildSnapshotFromConfig(samples, 'backup-agent', 'payments');
    expect(snapshot.resources[0]!.policies.map((policy) => policy.metadata.name)).toEqual(['backup-agent', 'baseline-guardrails']);
  });

  test('the version is a content hash', () => {
    const a = buildSnapshotFromConfig(samples, 'billing-service', 'payments');
    const b = buildSnapshotFromConfig(samples, 'billing-service', 'payments');
    const c = buildSnapshotFromConfig(samples, 'ci-runner', 'payments');
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
    expect(a.resources.map((entry) => entry.resource.metadata.name).sort()).toEqual(['billing-api', 'orders-db']);
  });

  test('an unknown identity is a clear error', () => {
    let caught: unknown;
    try {
      buildSnapshotFromConfig(loadConfigFromTexts([]), 'nobody');
    } catch (error) {
      caught = error;
    }
    expect(isGatehouseError(caught, 'GH_ERR_REF_UNKNOWN_IDENTITY')).toBe(true);
  });
});
