// Unit tests of server-side Table printing: printer column JSONPaths and human-readable ages.
import { humanDuration, toTable, wantsTable } from './table-output.js';
import type { ResourceType } from './resource-types.js';

const type: ResourceType = {
  group: 'example.dev', versions: ['v1'], plural: 'widgets', singular: 'widget', kind: 'Widget', namespaced: true, shortNames: [], categories: [], subresources: [],
  printerColumns: new Map([['v1', [
    { name: 'Owners', type: 'string', jsonPath: '.spec.owners[*].name' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'First', type: 'string', jsonPath: '.spec.owners[0].name' },
    { name: 'Size', type: 'integer', jsonPath: '.spec.size' },
  ]]]),
};

describe('Table output', () => {
  it('evaluates printer column JSONPaths', () => {
    const table = toTable(type, 'v1', [{
      metadata: { name: 'w', creationTimestamp: new Date(Date.now() - 90_000).toISOString() },
      spec: { owners: [{ name: 'a' }, { name: 'b' }], size: 3 },
      status: { conditions: [{ type: 'Synced', status: 'False' }, { type: 'Ready', status: 'True' }] },
    }]) as { columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> };
    expect(table.columnDefinitions.map((column) => column.name)).toEqual(['Name', 'Owners', 'Ready', 'First', 'Size']);
    expect(table.rows[0].cells).toEqual(['w', 'a,b', 'True', 'a', 3]);
  });

  it('formats ages as the real server does and detects Table requests', () => {
    expect([5_000, 150_000, 600_000, 3 * 3600_000 + 60_000, 50 * 3600_000, 3 * 86400_000 + 3600_000].map(humanDuration)).toEqual(['5s', '2m30s', '10m', '3h1m', '2d2h', '3d1h']);
    expect(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json')).toBe(true);
    expect(wantsTable('application/json')).toBe(false);
  });
});
