import { isBuiltinKind, validateBuiltinManifest } from './kube-schema.js';

function deployment(container: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { app: 'web' } },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [container] } } },
  };
}

describe('validateBuiltinManifest', () => {
  it('accepts a valid object, int-or-string ports and numeric quantities', () => {
    expect(validateBuiltinManifest(deployment({
      name: 'app', image: 'web:1', ports: [{ containerPort: 8080, name: 'http' }],
      readinessProbe: { httpGet: { path: '/readyz', port: 'http' } }, resources: { requests: { cpu: 1, memory: '64Mi' } },
    }))).toEqual([]);
  });

  it('rejects unknown fields, wrong types, missing required fields and wrong apiVersions', () => {
    expect(validateBuiltinManifest(deployment({ name: 'app', image: 'web:1', imagePullPolicyy: 'Always' })))
      .toEqual(['Deployment/web .spec.template.spec.containers[0].imagePullPolicyy: unknown field (not in V1Container)']);
    expect(validateBuiltinManifest(deployment({ name: 'app', image: 'web:1', ports: [{ containerPort: '8080' }] })))
      .toEqual(['Deployment/web .spec.template.spec.containers[0].ports[0].containerPort: expected a number, got "8080"']);
    expect(validateBuiltinManifest(deployment({ image: 'web:1' })))
      .toEqual(['Deployment/web .spec.template.spec.containers[0].name: required field missing (V1Container)']);
    expect(validateBuiltinManifest({ apiVersion: 'policy/v1beta1', kind: 'PodDisruptionBudget', metadata: { name: 'x' } }))
      .toEqual(['PodDisruptionBudget/x: apiVersion policy/v1beta1, expected policy/v1']);
    expect(validateBuiltinManifest({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 1.5 }] } }))
      .toEqual(['Service/s .spec.ports[0].port: expected an integer, got 1.5']);
  });

  it('knows the kinds the chart renders and not custom ones', () => {
    expect(isBuiltinKind('PodDisruptionBudget')).toBe(true);
    expect(isBuiltinKind('ServiceMonitor')).toBe(false);
  });
});
