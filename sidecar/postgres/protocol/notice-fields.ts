// The fields of ErrorResponse and NoticeResponse: one-letter codes on the wire, named here, and the
// conversion between the wire's field map and a typed notice.

/** Field codes, from the PostgreSQL "Error and Notice Message Fields" reference. */
export const NoticeField = {
  severity: 'S',
  severityNonLocalized: 'V',
  code: 'C',
  message: 'M',
  detail: 'D',
  hint: 'H',
  position: 'P',
  internalPosition: 'p',
  internalQuery: 'q',
  where: 'W',
  schema: 's',
  table: 't',
  column: 'c',
  dataType: 'd',
  constraint: 'n',
  file: 'F',
  line: 'L',
  routine: 'R',
} as const;

export type NoticeFieldName = keyof typeof NoticeField;

/** A notice or error by field name; `severity` and `code` (SQLSTATE) and `message` are always present. */
export type PgNotice = { readonly severity: string; readonly code: string; readonly message: string }
  & { readonly [name in Exclude<NoticeFieldName, 'severity' | 'code' | 'message'>]?: string };

const NAME_BY_CODE: ReadonlyMap<string, NoticeFieldName> = new Map(
  Object.entries(NoticeField).map(([name, code]) => [code, name as NoticeFieldName]),
);

/**
 * Names the fields of a decoded ErrorResponse/NoticeResponse. Unknown codes are dropped (the
 * protocol says to ignore them); absent mandatory fields read as empty strings.
 */
export function noticeFromFields(fields: ReadonlyMap<string, string>): PgNotice {
  const notice: Record<string, string> = { severity: '', code: '', message: '' };
  for (const [code, value] of fields) {
    const name = NAME_BY_CODE.get(code);
    if (name !== undefined) notice[name] = value;
  }
  return notice as PgNotice;
}

/** The wire fields of a notice, in the order PostgreSQL sends them; V repeats S, as servers since 9.6 do. */
export function fieldsFromNotice(notice: PgNotice): Map<string, string> {
  const fields = new Map<string, string>([
    [NoticeField.severity, notice.severity],
    [NoticeField.severityNonLocalized, notice.severityNonLocalized ?? notice.severity],
    [NoticeField.code, notice.code],
    [NoticeField.message, notice.message],
  ]);
  for (const [name, code] of Object.entries(NoticeField) as [NoticeFieldName, string][]) {
    const value = notice[name];
    if (value !== undefined && !fields.has(code)) fields.set(code, value);
  }
  return fields;
}
