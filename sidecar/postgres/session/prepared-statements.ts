// The session's view of the prepared statements the server holds, by name (Parse and SQL PREPARE
// share one namespace on the server). A Bind or EXECUTE is judged by what the server will run, so
// this view must never drift from the server's: every change is provisional until the server
// answers it, and undone when the server skipped it (after an error, until Sync) or refused it
// (a name already in use). Otherwise a skipped `Parse('', 'SELECT 1')` would make the sidecar judge
// a SELECT while the server still holds, and runs, an earlier DELETE.
import type { SqlClassification } from '../../../api/sql/operations.js';

/** A prepared statement as the session judged it when it was prepared. */
export interface StatementRecord {
  readonly text: string;
  /** Judged again, against the policy in force, at every Bind or EXECUTE. */
  readonly classification: SqlClassification;
}

/** A change the server has not answered yet. */
export interface ProvisionalChange {
  /** The server did it: the change is final. */
  confirm(): void;
  /** The server did not do it: the name reverts to the nearest change still standing. */
  undo(): void;
}

interface Entry {
  /** undefined: the name was closed. */
  readonly record: StatementRecord | undefined;
  /** What the name held before; cut once this entry is confirmed, so chains stay as short as what is in flight. */
  previous: Entry | undefined;
  undone: boolean;
}

export class PreparedStatements {
  private readonly byName = new Map<string, Entry>();

  get(name: string): StatementRecord | undefined {
    return this.byName.get(name)?.record;
  }

  /** Parse or PREPARE of `name`. */
  define(name: string, record: StatementRecord): ProvisionalChange {
    return this.change(name, record);
  }

  /** Close of `name`. */
  remove(name: string): ProvisionalChange {
    return this.change(name, undefined);
  }

  private change(name: string, record: StatementRecord | undefined): ProvisionalChange {
    const entry: Entry = { record, previous: this.byName.get(name), undone: false };
    this.set(name, entry);
    return {
      confirm: () => {
        entry.previous = undefined;
        // A confirmed Close leaves nothing to remember (apps that name every statement anew close many).
        if (record === undefined && this.byName.get(name) === entry) this.byName.delete(name);
      },
      undo: () => this.undo(name, entry),
    };
  }

  private undo(name: string, entry: Entry): void {
    entry.undone = true;
    // A later change to the name that still stands is left alone: it is what the server holds.
    if (this.byName.get(name) !== entry) return;
    let standing = entry.previous;
    while (standing?.undone) standing = standing.previous;
    this.set(name, standing);
  }

  private set(name: string, entry: Entry | undefined): void {
    if (entry?.record === undefined && entry?.previous === undefined) this.byName.delete(name);
    else this.byName.set(name, entry);
  }
}
