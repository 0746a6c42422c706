// Discovery documents (unaggregated, the form every client falls back to): /version, /api, /api/v1,
// /apis and /apis/{group}/{version}, built from the resource type registry so CRDs appear once created.
import { apiVersionOf, STORED_VERBS, type ResourceType, type ResourceTypeRegistry } from './resource-types.js';

const LOOPBACK_ADDRESS = [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }];

export function versionInfo(): Record<string, string> {
  return {
    major: '1', minor: '34', gitVersion: 'v1.34.0-gatehouse-loopback', gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean', buildDate: '2025-08-27T00:00:00Z', goVersion: 'go1.24.6', compiler: 'gc', platform: 'linux/amd64',
  };
}

export function coreVersions(): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: LOOPBACK_ADDRESS };
}

export function groupList(registry: ResourceTypeRegistry): Record<string, unknown> {
  const groups = [...registry.groups()].filter(([group]) => group !== '').map(([name, versions]) => ({
    name,
    versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
    preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
  }));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

function verbsOf(type: ResourceType): string[] {
  return type.virtual === true ? ['create'] : STORED_VERBS;
}

/** The APIResourceList of one group version, or undefined when nothing is served there. */
export function resourceList(registry: ResourceTypeRegistry, group: string, version: string): Record<string, unknown> | undefined {
  const types = registry.all().filter((type) => type.group === group && type.versions.includes(version));
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const type of types) {
    resources.push({
      name: type.plural, singularName: type.singular, namespaced: type.namespaced, kind: type.kind, verbs: verbsOf(type),
      ...(type.shortNames.length > 0 ? { shortNames: type.shortNames } : {}),
      ...(type.categories.length > 0 ? { categories: type.categories } : {}),
      storageVersionHash: Buffer.from(`${type.group}/${type.plural}`).toString('base64').slice(0, 11),
    });
    for (const subresource of type.subresources) {
      const isToken = subresource === 'token';
      resources.push({
        name: `${type.plural}/${subresource}`, singularName: '', namespaced: type.namespaced,
        ...(isToken ? { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] } : { kind: type.kind, verbs: ['get', 'patch', 'update'] }),
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources };
}
