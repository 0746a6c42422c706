// The remembered plans must be the ones a fresh planning would make: same bytes, same plan; other
// bytes (even of the same length), another plan; a new masker (policy snapshot), plans made again;
// the same bytes from a statement of other lineage (what its computed columns come from), another plan.
import fc from 'fast-check';
import type { OutputLineage } from '../../../api/sql/output-lineage.js';
import { createMasker } from '../../masking/masker.js';
import { encodeRowDescription } from '../protocol/backend-encoders.js';
import type { RowField } from '../protocol/backend-messages.js';
import { ReceivedFrame } from '../protocol/frame-splitter.js';
import type { ActiveResult } from './pending-requests.js';
import { PASS_THROUGH_RESULT, ResultPlans } from './result-plans.js';

function field(name: string): RowField {
  return { name, tableOid: 0, columnAttr: 0, typeOid: 25, typeLen: -1, typeMod: -1, format: 0 };
}

/** A RowDescription frame `before` bytes into the received buffer. */
function description(names: readonly string[], before = 0): ReceivedFrame {
  const raw = encodeRowDescription(names.map(field));
  const source = Buffer.concat([Buffer.alloc(before, 0x44), raw]);
  return new ReceivedFrame(raw[0]!, source, before, source.length, 5);
}

function planner(): { plans: ResultPlans; planned: string[][] } {
  const planned: string[][] = [];
  const plans = new ResultPlans((_masker, fields) => {
    planned.push(fields.map((one) => one.name));
    return { ...PASS_THROUGH_RESULT, fields };
  });
  return { plans, planned };
}

const names = (result: ActiveResult) => result.fields.map((one) => one.name);

describe('ResultPlans', () => {
  const masker = createMasker([{ columns: ['email'] }]);

  test('plans a description once, wherever its frame lies in the read', () => {
    const { plans, planned } = planner();
    const first = plans.forFrame(masker, description(['email', 'id']), undefined);
    expect(plans.forFrame(masker, description(['email', 'id'], 7), undefined)).toBe(first);
    expect(plans.forDescription(masker, description(['email', 'id'], 3).payload, undefined)).toBe(first);
    expect(planned).toEqual([['email', 'id']]);
  });

  test('other bytes of the same length are another description', () => {
    const { plans, planned } = planner();
    expect(names(plans.forFrame(masker, description(['email', 'ab']), undefined))).toEqual(['email', 'ab']);
    expect(names(plans.forFrame(masker, description(['email', 'ac']), undefined))).toEqual(['email', 'ac']);
    expect(names(plans.forFrame(masker, description(['email', 'ab']), undefined))).toEqual(['email', 'ab']);
    expect(planned).toEqual([['email', 'ab'], ['email', 'ac']]);
  });

  test('a new masker forgets the plans; an inactive one plans nothing', () => {
    const { plans, planned } = planner();
    plans.forFrame(masker, description(['email']), undefined);
    plans.forFrame(createMasker([{ columns: ['email'] }]), description(['email']), undefined);
    expect(planned).toEqual([['email'], ['email']]);
    expect(plans.forFrame(createMasker([]), description(['email']), undefined)).toBe(PASS_THROUGH_RESULT);
  });

  test('the same description from a statement computing its columns from other columns is planned again', () => {
    const { plans, planned } = planner();
    const fromName: OutputLineage = { kind: 'known', columns: [{ star: false, sources: [{ column: 'name' }], wholeRows: [] }] };
    const fromCard: OutputLineage = { kind: 'known', columns: [{ star: false, sources: [{ column: 'card_number' }], wholeRows: [] }] };
    const first = plans.forFrame(masker, description(['c']), fromName);
    expect(plans.forFrame(masker, description(['c']), fromName)).toBe(first);
    expect(plans.forFrame(masker, description(['c']), fromCard)).not.toBe(first);
    expect(planned).toEqual([['c'], ['c']]);
  });

  test('over any sequence of descriptions, each gets the plan of its own columns, planned once while remembered', () => {
    const columns = fc.array(fc.constantFrom('a', 'b', 'ab', 'ba', 'email', 'emaim'), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(fc.array(fc.tuple(columns, fc.nat({ max: 9 })), { maxLength: 30 }), (sequence) => {
        const { plans, planned } = planner();
        const recent: string[] = [];
        return sequence.every(([wanted, before]) => {
          const key = wanted.join(',');
          const remembered = recent.includes(key);
          const plannedBefore = planned.length;
          const got = names(plans.forFrame(masker, description(wanted, before), undefined));
          if (remembered) recent.splice(recent.indexOf(key), 1);
          recent.unshift(key);
          recent.length = Math.min(recent.length, 8);
          return got.join(',') === key && planned.length === plannedBefore + (remembered ? 0 : 1);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('remembers the most recent eight descriptions', () => {
    const { plans, planned } = planner();
    for (let index = 0; index < 9; index += 1) plans.forFrame(masker, description([`c${index}`]), undefined);
    plans.forFrame(masker, description(['c8']), undefined);
    plans.forFrame(masker, description(['c1']), undefined);
    expect(planned).toHaveLength(9);
    plans.forFrame(masker, description(['c0']), undefined);
    expect(planned).toHaveLength(10);
  });
});
