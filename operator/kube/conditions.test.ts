import { conditionTime, findCondition, isConditionTrue, removeCondition, setCondition, type Condition } from './conditions.js';

const t0 = new Date('2026-01-01T10:00:00.123Z');
const t1 = new Date('2026-01-01T11:30:00.999Z');

describe('setCondition', () => {
  test('appends a new condition with the transition time to the second', () => {
    const conditions = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting' }, t0);
    expect(conditions).toEqual([{ type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting', lastTransitionTime: '2026-01-01T10:00:00Z' }]);
  });

  test('keeps lastTransitionTime when the status is unchanged but updates the rest', () => {
    const first = setCondition([], { type: 'Ready', status: 'True', reason: 'A', message: 'a', observedGeneration: 1 }, t0);
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'B', message: 'b', observedGeneration: 2 }, t1);
    expect(second).toEqual([{ type: 'Ready', status: 'True', reason: 'B', message: 'b', observedGeneration: 2, lastTransitionTime: conditionTime(t0) }]);
  });

  test('moves lastTransitionTime when the status changes, in place among other conditions, without mutating the input', () => {
    const start: Condition[] = [
      { type: 'Ready', status: 'True', reason: 'A', message: '', lastTransitionTime: conditionTime(t0) },
      { type: 'Degraded', status: 'False', reason: 'A', message: '', lastTransitionTime: conditionTime(t0) },
    ];
    const next = setCondition(start, { type: 'Ready', status: 'False', reason: 'Broken', message: 'x' }, t1);
    expect(next.map((c) => c.type)).toEqual(['Ready', 'Degraded']);
    expect(next[0]).toMatchObject({ status: 'False', reason: 'Broken', lastTransitionTime: '2026-01-01T11:30:00Z' });
    expect(start[0]?.status).toBe('True');
  });

  test('find, isTrue and remove', () => {
    const list = setCondition(setCondition([], { type: 'Ready', status: 'True', reason: 'R', message: '' }, t0), { type: 'Synced', status: 'Unknown', reason: 'R', message: '' }, t0);
    expect(findCondition(list, 'Synced')?.status).toBe('Unknown');
    expect(isConditionTrue(list, 'Ready')).toBe(true);
    expect(isConditionTrue(list, 'Synced')).toBe(false);
    expect(isConditionTrue(undefined, 'Ready')).toBe(false);
    expect(removeCondition(list, 'Ready').map((c) => c.type)).toEqual(['Synced']);
  });
});
