import { jsonPathText, jsonPathValues, JsonPathSyntaxError } from './json-path.js';

const pod = {
  metadata: { name: 'web-1', labels: { 'app.kubernetes.io/name': 'orders' } },
  status: {
    phase: 'Running',
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'Ready', status: 'False', reason: 'ContainersNotReady' },
    ],
  },
};
const list = { items: [{ metadata: { name: 'a' } }, { metadata: { name: 'b' } }] };

describe('jsonPathValues / jsonPathText', () => {
  it.each([
    ['{.status.phase}', pod, 'Running'],
    ['.status.phase', pod, 'Running'],
    ['{.status.conditions[?(@.type=="Ready")].status}', pod, 'False'],
    ["{.status.conditions[?(@.type=='PodScheduled')].status}", pod, 'True'],
    ['{.status.conditions[-1].reason}', pod, 'ContainersNotReady'],
    ["{.metadata.labels['app.kubernetes.io/name']}", pod, 'orders'],
    ['{.items[0].metadata.name}', list, 'a'],
    ['{.items[*].metadata.name}', list, 'a b'],
    ['{.status.missing}', pod, ''],
    ['{.status.conditions[?(@.type=="Nope")].status}', pod, ''],
  ])('%s', (expression, value, expected) => {
    expect(jsonPathText(value, expression)).toBe(expected);
  });

  it('prints objects as JSON and selects nothing through non-objects', () => {
    expect(jsonPathText(pod, '{.metadata.labels}')).toBe('{"app.kubernetes.io/name":"orders"}');
    expect(jsonPathValues(pod, '{.status.phase.length}')).toEqual([]);
  });

  it('rejects what it does not understand instead of matching nothing silently', () => {
    expect(() => jsonPathValues(pod, '{.status.conditions[?(@.type~="x")]}')).toThrow(JsonPathSyntaxError);
    expect(() => jsonPathValues(pod, '{status}')).toThrow(/cannot read/);
  });
});
