// The session's provisional view of the server's prepared statements: changes the server skipped or
// refused are undone, in any order, without disturbing a later change that stands.
import type { SqlClassification } from '../../../api/sql/operations.js';
import { PreparedStatements, type StatementRecord } from './prepared-statements.js';

const EMPTY: SqlClassification = { operation: 'read', operations: ['read'], statements: [] };

function record(text: string): StatementRecord {
  return { text, classification: EMPTY };
}

describe('PreparedStatements', () => {
  it('keeps a confirmed definition and reverts an undone one to what stood before', () => {
    const statements = new PreparedStatements();
    statements.define('s', record('old')).confirm();
    statements.define('s', record('skipped')).undo();
    expect(statements.get('s')?.text).toBe('old');
  });

  it('undoes a run of skipped changes newest first, back to the last standing one', () => {
    const statements = new PreparedStatements();
    statements.define('', record('DELETE')).confirm();
    const first = statements.define('', record('SELECT 1'));
    const second = statements.define('', record('SELECT 2'));
    second.undo();
    first.undo();
    expect(statements.get('')?.text).toBe('DELETE');
  });

  it('leaves a later change that stands alone when an earlier one is undone, and skips undone ones after it', () => {
    const statements = new PreparedStatements();
    statements.define('p', record('v0')).confirm();
    const skipped = statements.define('p', record('v1'));
    const later = statements.define('p', record('v2'));
    skipped.undo();
    expect(statements.get('p')?.text).toBe('v2');
    later.undo(); // refused by the server after all: back past the skipped v1 to v0
    expect(statements.get('p')?.text).toBe('v0');
  });

  it('reverts a skipped Close, and forgets a confirmed one', () => {
    const statements = new PreparedStatements();
    statements.define('d', record('DELETE')).confirm();
    statements.remove('d').undo();
    expect(statements.get('d')?.text).toBe('DELETE');
    statements.remove('d').confirm();
    expect(statements.get('d')).toBeUndefined();
    statements.define('n', record('new')).undo();
    expect(statements.get('n')).toBeUndefined();
  });
});
