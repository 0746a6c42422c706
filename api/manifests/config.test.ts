// loadConfigFromObjects must load already-parsed objects exactly as loadConfigFromTexts loads their
// JSON texts (same objects, same problems), without touching the caller's objects.
import { loadConfigFromObjects, loadConfigFromTexts, type GatehouseConfig, type ManifestObject } from './config.js';

const identity = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'NonHumanIdentity',
  metadata: { name: 'ci-runner', namespace: 'payments', uid: 'u-1', creationTimestamp: new Date('2026-11-22T10:00:00Z') },
  spec: { serviceAccountName: 'ci-runner', groups: ['ci'] },
};
const resource = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'ProtectedResource',
  metadata: { name: 'orders-db', namespace: 'payments' },
  spec: { protocol: 'postgres', address: 'db.payments.svc:5432', credentials: { strategy: 'static', secretRef: { name: 'admin' } }, sidecar: { port: 15432 } },
};
const MANIFESTS: ManifestObject[] = [
  { file: 'identity', object: identity },
  { file: 'resource', object: resource },
  { file: 'typo', object: { ...resource, metadata: { name: 'typo-db', namespace: 'payments' }, spec: { ...resource.spec, protocl: 'tcp' } } },
  { file: 'duplicate', object: identity },
  { file: 'secret', object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'admin', namespace: 'payments' }, data: { username: 'YWRtaW4=', password: 'not base64!' } } },
  { file: 'unknown-kind', object: { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessGrant', metadata: { name: 'x' } } },
  { file: 'not-an-object', object: ['a list'] },
  { file: 'request', object: { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessRequest', metadata: { name: 'r' }, spec: {} } },
];

function summary(config: GatehouseConfig): unknown {
  return {
    identities: config.identities,
    resources: config.resources,
    policies: config.policies,
    secrets: config.secrets,
    problems: config.problems,
    rejected: config.rejected,
    files: config.files,
    objectCount: config.objectCount,
    sources: [...config.identities, ...config.resources, ...config.secrets].map((object) => config.sourceOf(object)?.file),
  };
}

describe('loadConfigFromObjects', () => {
  it('gives what loadConfigFromTexts gives for the objects as JSON texts', () => {
    const fromObjects = loadConfigFromObjects(MANIFESTS);
    const fromTexts = loadConfigFromTexts(MANIFESTS.map(({ file, object }) => ({ file, text: JSON.stringify(object) })));
    expect(summary(fromObjects)).toEqual(summary(fromTexts));
    // The cases above must have produced something to compare.
    expect(fromObjects.problems.map((problem) => problem.code)).toEqual(expect.arrayContaining([
      'GH_ERR_MANIFEST_SCHEMA', 'GH_ERR_MANIFEST_DUPLICATE', 'GH_ERR_MANIFEST_UNKNOWN_KIND', 'GH_ERR_MANIFEST_NOT_OBJECT',
    ]));
    expect(fromObjects.rejected).toEqual(expect.arrayContaining([{ kind: 'ProtectedResource', namespace: 'payments', name: 'typo-db' }]));
  });

  it('applies schema defaults to its copies, never to the objects it was given', () => {
    const withTls = { ...resource, spec: { ...resource.spec, tls: { caSecretRef: { name: 'ca' } } } };
    const before = JSON.stringify(withTls);
    const config = loadConfigFromObjects([{ file: 'resource', object: withTls }]);
    expect(JSON.stringify(withTls)).toBe(before);
    expect(config.resources[0]?.spec.tls).toEqual({ mode: 'prefer', caSecretRef: { name: 'ca', key: 'ca.crt' } });
  });
});
