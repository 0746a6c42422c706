// What a PromQL expression refers to: the series names it selects and the label names it matches or
// groups by. A tokenizer, not a full parser: enough to check dashboards and alerts against the code's
// metrics, and strict enough that an expression it cannot tokenize is an error rather than a pass.

export interface PromqlReferences {
  /** Series selected, e.g. gatehouse_sidecar_added_latency_seconds_bucket. */
  readonly series: readonly string[];
  /** Label names in matchers ({name="..."}) and in by/without/on/ignoring/group_left/group_right lists. */
  readonly labels: readonly string[];
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

type Token = { readonly kind: 'ident' | 'string' | 'number' | 'punct'; readonly text: string };

function readQuoted(text: string, start: number): number {
  const quote = text[start];
  let index = start + 1;
  while (index < text.length && text[index] !== quote) index += text[index] === '\\' && quote !== '`' ? 2 : 1;
  if (index >= text.length) throw new Error(`unterminated string at ${start} in: ${text}`);
  return index + 1;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < text.length) {
    const rest = text.slice(index);
    const char = text[index];
    if (/\s/.test(char)) { index += 1; continue; }
    if (char === '#') { index = text.indexOf('\n', index) === -1 ? text.length : text.indexOf('\n', index); continue; }
    if (char === '"' || char === "'" || char === '`') {
      const end = readQuoted(text, index);
      tokens.push({ kind: 'string', text: text.slice(index, end) });
      index = end;
      continue;
    }
    // Numbers and durations (5m, 1h30m, 0.2, 1e3); Grafana's $__rate_interval stands in for one.
    const number = /^(\$__[a-z_]+|\$\{__[a-z_]+\}|[0-9][0-9a-zA-Z.]*)/.exec(rest);
    if (number) { tokens.push({ kind: 'number', text: number[0] }); index += number[0].length; continue; }
    const ident = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
    if (ident) { tokens.push({ kind: 'ident', text: ident[0] }); index += ident[0].length; continue; }
    const punct = /^(==|!=|=~|!~|>=|<=|[-+*/%^<>=(){}[\],:])/.exec(rest);
    if (!punct) throw new Error(`unexpected ${JSON.stringify(char)} at ${index} in: ${text}`);
    tokens.push({ kind: 'punct', text: punct[0] });
    index += punct[0].length;
  }
  return tokens;
}

/** Reads `( a, b )` starting at tokens[start] === '('; returns the names and the index after ')'. */
function labelList(tokens: readonly Token[], start: number): { names: string[]; next: number } {
  if (tokens[start]?.text !== '(') return { names: [], next: start };
  const names: string[] = [];
  let index = start + 1;
  while (index < tokens.length && tokens[index].text !== ')') {
    if (tokens[index].kind === 'ident') names.push(tokens[index].text);
    index += 1;
  }
  return { names, next: index + 1 };
}

/** Reads a matcher block `{ name op "value", ... }` starting at '{'. */
function matchers(tokens: readonly Token[], start: number): { names: string[]; next: number } {
  const names: string[] = [];
  let index = start + 1;
  while (index < tokens.length && tokens[index].text !== '}') {
    if (tokens[index].kind === 'ident' && ['=', '!=', '=~', '!~'].includes(tokens[index + 1]?.text ?? '')) names.push(tokens[index].text);
    index += 1;
  }
  if (index >= tokens.length) throw new Error('unterminated label matcher block');
  return { names, next: index + 1 };
}

export function promqlReferences(expression: string): PromqlReferences {
  const tokens = tokenize(expression);
  const series: string[] = [];
  const labels: string[] = [];
  let index = 0;
  while (index < tokens.length) {
    const token = tokens[index];
    if (token.text === '[') {
      // Range and subquery selectors hold durations only.
      while (index < tokens.length && tokens[index].text !== ']') index += 1;
      index += 1;
      continue;
    }
    if (token.text === '{') {
      const block = matchers(tokens, index);
      labels.push(...block.names);
      index = block.next;
      continue;
    }
    if (token.kind !== 'ident') { index += 1; continue; }
    const lower = token.text.toLowerCase();
    if (LABEL_LISTS.has(lower)) {
      const list = labelList(tokens, index + 1);
      labels.push(...list.names);
      index = Math.max(list.next, index + 1);
      continue;
    }
    if (KEYWORDS.has(lower)) { index += 1; continue; }
    // A name followed by '(' is a function or aggregation, except that an aggregation may put its
    // `by (...)` between the name and the '(' (handled above when reached).
    const next = tokens[index + 1];
    if (next?.text === '(' || (next?.kind === 'ident' && ['by', 'without'].includes(next.text.toLowerCase()))) { index += 1; continue; }
    series.push(token.text);
    index += 1;
  }
  return { series: [...new Set(series)], labels: [...new Set(labels)] };
}
