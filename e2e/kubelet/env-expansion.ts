// Kubernetes `$(VAR)` expansion, ported from k8s.io/kubernetes third_party/forked/golang/expansion so
// the stand-in kubelet gives a container the same env and args a real kubelet would.

const OPERATOR = '$';
const OPENER = '(';
const CLOSER = ')';

/** Looks a variable up; undefined means "not defined", and the reference then stays as written. */
export type VariableLookup = (name: string) => string | undefined;

/**
 * Expands `$(NAME)` references with `lookup`. `$$` is an escaped `$`; an undefined name or an
 * unclosed `$(` stays verbatim, exactly as the kubelet leaves them.
 */
export function expandVariables(input: string, lookup: VariableLookup): string {
  let output = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== OPERATOR || cursor + 1 >= input.length) continue;
    output += input.slice(checkpoint, cursor);
    const { text, isVariable, advance } = readVariableName(input.slice(cursor + 1));
    output += isVariable ? (lookup(text) ?? `$(${text})`) : text;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return output + input.slice(checkpoint);
}

function readVariableName(rest: string): { text: string; isVariable: boolean; advance: number } {
  if (rest[0] === OPERATOR) return { text: OPERATOR, isVariable: false, advance: 1 };
  if (rest[0] === OPENER) {
    const close = rest.indexOf(CLOSER, 1);
    if (close >= 0) return { text: rest.slice(1, close), isVariable: true, advance: close + 1 };
    return { text: OPERATOR + OPENER, isVariable: false, advance: 1 };
  }
  return { text: OPERATOR + rest[0], isVariable: false, advance: 1 };
}

/** A lookup over maps tried in order, as the kubelet's MappingFuncFor does. */
export function lookupIn(...maps: ReadonlyArray<ReadonlyMap<string, string>>): VariableLookup {
  return (name) => {
    for (const map of maps) {
      const value = map.get(name);
      if (value !== undefined) return value;
    }
    return undefined;
  };
}
