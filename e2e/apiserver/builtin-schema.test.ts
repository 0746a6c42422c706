import { builtinApiVersionsOf, builtinModel, checkBuiltinObject, openApiComponentsOf } from './builtin-schema.js';

const podSpec = (container: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: undefined }, spec: { containers: [{ name: 'app', image: 'app:1', ...container }] },
});

describe('builtinModel', () => {
  it('maps apiVersion and kind to the client-node model, and knows which apiVersions define a kind', () => {
    expect(builtinModel('policy/v1', 'PodDisruptionBudget')).toBe('V1PodDisruptionBudget');
    expect(builtinModel('events.k8s.io/v1', 'Event')).toBe('EventsV1Event');
    expect(builtinModel('v1', 'Event')).toBe('CoreV1Event');
    expect(builtinModel('policy/v1beta1', 'PodDisruptionBudget')).toBeUndefined();
    expect(builtinModel('v1', 'toString')).toBeUndefined();
    expect(builtinApiVersionsOf('HorizontalPodAutoscaler')).toEqual(['autoscaling/v2', 'autoscaling/v1']);
  });
});

describe('checkBuiltinObject', () => {
  it('prunes unknown fields at any depth and keeps everything else, dropping undefined properties', () => {
    const { problems, pruned } = checkBuiltinObject('V1Pod', podSpec({ securityContext: { readOnlyRootFS: true, runAsUser: 1000 }, colour: 'blue' }));
    expect(problems.map((problem) => [problem.kind, problem.path])).toEqual([
      ['unknown', '.spec.containers[0].securityContext.readOnlyRootFS'], ['unknown', '.spec.containers[0].colour'],
    ]);
    expect(pruned).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'app:1', securityContext: { runAsUser: 1000 } }] } });
    expect(Object.keys((pruned as { metadata: object }).metadata)).toEqual(['name']);
  });

  it('describes a wrong type as the Go decoder does: owning struct, index-free path, Go and JSON types', () => {
    const { problems } = checkBuiltinObject('V1Pod', podSpec({ livenessProbe: { periodSeconds: '20' }, ports: [{ containerPort: 80.5 }] }));
    expect(problems).toEqual([
      expect.objectContaining({ kind: 'type', path: '.spec.containers[0].livenessProbe.periodSeconds', goField: 'Probe.spec.containers.livenessProbe.periodSeconds', goType: 'int32', jsonType: 'string' }),
      expect.objectContaining({ kind: 'type', path: '.spec.containers[0].ports[0].containerPort', message: 'expected an integer, got 80.5', goField: 'ContainerPort.spec.containers.ports.containerPort' }),
    ]);
    expect(checkBuiltinObject('CoreV1Event', { metadata: { name: 'e' }, involvedObject: {}, count: true }).problems)
      .toEqual([expect.objectContaining({ goField: 'Event.count', goType: 'int32', jsonType: 'bool' })]);
  });

  it('accepts quantities as numbers or strings, int-or-string, nulls and free-form fields', () => {
    const quota = { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'q', annotations: null }, spec: { hard: { cpu: 4, memory: '1Gi' } } };
    expect(checkBuiltinObject('V1ResourceQuota', quota).problems).toEqual([]);
    const pod = podSpec({ resources: { limits: { cpu: 0.5 } }, readinessProbe: { httpGet: { port: 'http' } } });
    expect(checkBuiltinObject('V1Pod', { ...pod, metadata: { name: 'p', managedFields: [{ fieldsV1: { 'f:spec': {} } }] } }).problems).toEqual([]);
    expect(checkBuiltinObject('V1Pod', podSpec({ readinessProbe: { httpGet: { port: 1.5 } } })).problems.map((problem) => problem.message))
      .toEqual(['expected an integer or a string, got 1.5']);
  });

  it('reports required fields missing (the chart validator uses them; the server does not)', () => {
    expect(checkBuiltinObject('V1Pod', { metadata: { name: 'p' }, spec: { containers: [{ image: 'x' }] } }).problems)
      .toEqual([expect.objectContaining({ kind: 'required', path: '.spec.containers[0].name' })]);
  });
});

describe('openApiComponentsOf', () => {
  it('turns a model into OpenAPI v3 components with types, references, descriptions and required fields', () => {
    const { root, components } = openApiComponentsOf('V1Probe');
    expect(root).toBe('io.k8s.api.v1.Probe');
    const probe = components[root] as { description: string; properties: Record<string, Record<string, unknown>> };
    expect(probe.description).toContain('Probe describes a health check');
    expect(probe.properties.periodSeconds).toEqual({ type: 'integer', format: 'int32', description: expect.stringContaining('How often (in seconds)') });
    expect(probe.properties.httpGet).toMatchObject({ allOf: [{ $ref: '#/components/schemas/io.k8s.api.v1.HTTPGetAction' }] });
    expect(components['io.k8s.api.v1.HTTPGetAction']).toMatchObject({ required: ['port'], properties: { port: { allOf: [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString' }] } } });
    expect(openApiComponentsOf('CoreV1Event').root).toBe('io.k8s.api.core.v1.Event');
  });

  it('handles models that refer to themselves', () => {
    const { root, components } = openApiComponentsOf('V1JSONSchemaProps');
    expect((components[root] as { properties: Record<string, unknown> }).properties.properties)
      .toEqual(expect.objectContaining({ type: 'object', additionalProperties: expect.objectContaining({ allOf: [{ $ref: `#/components/schemas/${root}` }] }) }));
  });
});
