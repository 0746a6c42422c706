// Unit tests of label and field selector parsing, and of webhook label selector objects.
import { matchesLabelSelectorObject, parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { KubeObject } from './objects.js';

const object = (labels: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject => ({ metadata: { name: 'n', namespace: 'ns', labels }, ...extra });

describe('label selectors', () => {
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ['a=1', { a: '1' }, true], ['a==1', { a: '2' }, false], ['a!=1', {}, true], ['a in (1, 2)', { a: '2' }, true],
    ['a notin (1,2)', { a: '3' }, true], ['a notin (1,2)', {}, true], ['a', { a: '' }, true], ['!a', { a: 'x' }, false],
    ['a=1,b in (x)', { a: '1', b: 'x' }, true], ['a=1,b in (x)', { a: '1', b: 'y' }, false], ['', {}, true],
  ];
  it.each(cases)('%s on %j → %s', (selector, labels, expected) => {
    expect(parseLabelSelector(selector)(object(labels))).toBe(expected);
  });
  it('refuses unparsable selectors with 400', () => {
    expect(() => parseLabelSelector('a in 1')).toThrow(expect.objectContaining({ code: 400 }));
  });
});

describe('field selectors', () => {
  it('matches supported fields and refuses others', () => {
    expect(parseFieldSelector('metadata.name=n,metadata.namespace=ns')(object({}))).toBe(true);
    expect(parseFieldSelector('spec.nodeName=node-a')(object({}, { spec: { nodeName: 'node-a' } }))).toBe(true);
    expect(parseFieldSelector('spec.nodeName!=node-a')(object({}, { spec: {} }))).toBe(true);
    expect(() => parseFieldSelector('spec.color=red')).toThrow(expect.objectContaining({ code: 400 }));
  });
});

describe('webhook label selector objects', () => {
  it('applies matchLabels and matchExpressions', () => {
    expect(matchesLabelSelectorObject({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] }, { a: '1' })).toBe(true);
    expect(matchesLabelSelectorObject({ matchExpressions: [{ key: 'b', operator: 'In', values: ['x'] }] }, { b: 'y' })).toBe(false);
    expect(matchesLabelSelectorObject(undefined, {})).toBe(true);
  });
});
