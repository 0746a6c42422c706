import { UNKNOWN_LINEAGE, type OutputColumn, type OutputLineage } from '../../../api/sql/output-lineage.js';
import type { RowField } from '../protocol/backend-messages.js';
import { columnLineages } from './result-lineage.js';

const field = (name: string, tableOid = 0): RowField => ({ name, tableOid, columnAttr: tableOid === 0 ? 0 : 1, typeOid: 25, typeLen: -1, typeMod: -1, format: 0 });
const entry = (column?: string, star = false): OutputColumn => ({ star, sources: column ? [{ column }] : [], wholeRows: [] });
const known = (...columns: OutputColumn[]): OutputLineage => ({ kind: 'known', columns });
const names = (lineages: ReturnType<typeof columnLineages>) => lineages.map((lineage) => (lineage === undefined ? '-' : lineage.unknown ? '?' : lineage.sources.map((source) => source.column).join('+')));

describe('columnLineages', () => {
  it('gives computed fields their entry by position, and table columns nothing', () => {
    expect(names(columnLineages([field('a'), field('b', 16384), field('c')], known(entry('card'), entry('name'), entry())))).toEqual(['card', '-', '-']);
  });

  it('spans one * over as many fields as it expands to', () => {
    const lineage = known(entry('x'), entry('derived', true), entry('y'));
    expect(names(columnLineages([field('a'), field('s1'), field('s2', 16384), field('s3'), field('b')], lineage))).toEqual(['x', 'derived', '-', 'derived', 'y']);
    expect(names(columnLineages([field('a'), field('b')], lineage))).toEqual(['x', 'y']);
  });

  it('gives every computed field all entries when the positions cannot be told', () => {
    const twoStars = known(entry('x', true), entry('y', true));
    expect(names(columnLineages([field('a'), field('b', 16384), field('c')], twoStars))).toEqual(['x+y', '-', 'x+y']);
    const tooFew = known(entry('x'), entry('y'));
    expect(names(columnLineages([field('a'), field('b'), field('c')], tooFew))).toEqual(['x+y', 'x+y', 'x+y']);
  });

  it('marks every computed field unknown for an unknown lineage, and none for a statement without rows of its own', () => {
    expect(names(columnLineages([field('a'), field('b', 16384)], UNKNOWN_LINEAGE))).toEqual(['?', '-']);
    expect(names(columnLineages([field('a')], undefined))).toEqual(['-']);
  });
});
