// The cells of one DataRow to replace, in column order: what masking decided for a row, handed to
// encodeEditedDataRow. Cleared and refilled row after row, so a result set allocates it once.
export class DataRowEdits {
  count = 0;
  /** Column index of each edit, ascending. */
  readonly columns: number[] = [];
  /** The new value of each edit; null for SQL NULL. */
  readonly values: (Uint8Array | null)[] = [];

  clear(): void {
    this.count = 0;
  }

  /** Columns must be added in ascending order. */
  add(column: number, value: Uint8Array | null): void {
    this.columns[this.count] = column;
    this.values[this.count] = value;
    this.count += 1;
  }
}
