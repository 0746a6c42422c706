// The subset of kubectl's JSONPath that e2e waits need: `{.status.phase}`,
// `{.status.conditions[?(@.type=="Ready")].status}`, `{.items[0].metadata.name}`, `{.items[*].metadata.name}`.
// Pure, so a wait's predicate reads the same as the `kubectl get -o jsonpath=...` a reader would type.

type Step =
  | { readonly kind: 'field'; readonly name: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'all' }
  | { readonly kind: 'filter'; readonly path: readonly string[]; readonly equals: string };

const FILTER = /^\?\(@((?:\.[\w-]+)+)\s*==\s*(?:"([^"]*)"|'([^']*)'|([\w.-]+))\)$/;

export class JsonPathSyntaxError extends Error {
  constructor(expression: string, detail: string) {
    super(`JSONPath ${expression}: ${detail}`);
    this.name = 'JsonPathSyntaxError';
  }
}

export function parseJsonPath(expression: string): Step[] {
  const body = expression.trim().replace(/^\{(.*)\}$/s, '$1').replace(/^\$/, '');
  const steps: Step[] = [];
  let rest = body;
  while (rest.length > 0) {
    const field = /^\.([\w-]+|\*)/.exec(rest) ?? /^\['([^']+)'\]/.exec(rest);
    if (field) {
      steps.push(field[1] === '*' ? { kind: 'all' } : { kind: 'field', name: field[1] });
      rest = rest.slice(field[0].length);
      continue;
    }
    const bracket = /^\[([^\]]*)\]/.exec(rest);
    if (!bracket) throw new JsonPathSyntaxError(expression, `cannot read "${rest}"`);
    steps.push(bracketStep(expression, bracket[1]));
    rest = rest.slice(bracket[0].length);
  }
  return steps;
}

function bracketStep(expression: string, inner: string): Step {
  if (inner === '*') return { kind: 'all' };
  if (/^-?\d+$/.test(inner)) return { kind: 'index', index: Number(inner) };
  const filter = FILTER.exec(inner);
  if (!filter) throw new JsonPathSyntaxError(expression, `unsupported selector [${inner}]`);
  return { kind: 'filter', path: filter[1].slice(1).split('.'), equals: filter[2] ?? filter[3] ?? filter[4] };
}

/** Every value the expression selects (a filter or `*` can select several; a missing field none). */
export function jsonPathValues(value: unknown, expression: string): unknown[] {
  let current: unknown[] = [value];
  for (const step of parseJsonPath(expression)) current = current.flatMap((item) => applyStep(item, step));
  return current;
}

function applyStep(item: unknown, step: Step): unknown[] {
  switch (step.kind) {
    case 'field':
      return isRecord(item) && step.name in item ? [item[step.name]] : [];
    case 'index': {
      if (!Array.isArray(item)) return [];
      const index = step.index < 0 ? item.length + step.index : step.index;
      return index >= 0 && index < item.length ? [item[index]] : [];
    }
    case 'all':
      return Array.isArray(item) ? item : isRecord(item) ? Object.values(item) : [];
    case 'filter':
      return Array.isArray(item) ? item.filter((element) => String(followPath(element, step.path)) === step.equals) : [];
  }
}

function followPath(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((current, name) => (isRecord(current) ? current[name] : undefined), value);
}

/** What kubectl prints for `-o jsonpath=`: selected values joined by spaces, objects as JSON. */
export function jsonPathText(value: unknown, expression: string): string {
  return jsonPathValues(value, expression).map((item) => (typeof item === 'object' && item !== null ? JSON.stringify(item) : String(item))).join(' ');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
