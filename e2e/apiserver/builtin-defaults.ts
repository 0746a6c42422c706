// What the real server fills in when a built-in object is created (the parts tests and kubectl notice):
// status reset for types with a status subresource, pod phase Pending, namespace phase Active and
// name label,
// a service clusterIP. Everything else is stored as sent.
import { clone, isJsonObject, type KubeObject } from './objects.js';
import type { ResourceType } from './resource-types.js';

let nextClusterIp = 1;

function allocateClusterIp(): string {
  const n = nextClusterIp++;
  return `10.96.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

export function createDefaults(type: ResourceType, input: KubeObject): KubeObject {
  const object = clone(input);
  // On create the status comes from the server, never from the client, for types that split it off.
  if (type.subresources.includes('status')) delete object.status;
  if (type.group !== '') return object;
  const spec = isJsonObject(object.spec) ? object.spec : undefined;
  switch (type.plural) {
    case 'namespaces':
      object.status = { phase: 'Active' };
      withNamespaceNameLabel(object);
      break;
    case 'pods':
      object.status = { phase: 'Pending' };
      if (spec !== undefined && spec.serviceAccountName === undefined) spec.serviceAccountName = 'default';
      break;
    case 'secrets':
      if (object.type === undefined || object.type === '') object.type = 'Opaque';
      break;
    case 'services':
      if (spec !== undefined && spec.type !== 'ExternalName' && spec.clusterIP === undefined) {
        spec.clusterIP = allocateClusterIp();
        spec.clusterIPs = [spec.clusterIP];
      }
      object.status = { loadBalancer: {} };
      break;
  }
  return object;
}

/** The real server keeps `kubernetes.io/metadata.name` on every namespace, so selectors can name one. */
export function withNamespaceNameLabel(namespace: KubeObject): KubeObject {
  namespace.metadata.labels = { ...namespace.metadata.labels, 'kubernetes.io/metadata.name': namespace.metadata.name! };
  return namespace;
}

/** What the real server does on every write of a built-in: a Secret's stringData is folded into data. */
export function normalizeOnWrite(type: ResourceType, object: KubeObject): KubeObject {
  if (type.group !== '' || type.plural !== 'secrets' || !isJsonObject(object.stringData)) return object;
  const data: Record<string, string> = isJsonObject(object.data) ? { ...(object.data as Record<string, string>) } : {};
  for (const [key, value] of Object.entries(object.stringData)) data[key] = Buffer.from(String(value), 'utf8').toString('base64');
  const { stringData: _stringData, ...rest } = object;
  return { ...rest, data } as KubeObject;
}
