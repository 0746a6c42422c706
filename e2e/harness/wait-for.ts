// Polling waits for e2e scenarios: until an object read with `kubectl get -o json` satisfies a
// predicate, with a timeout whose error shows the object as last seen, so a failed wait explains itself.
import { GatehouseError } from '../../api/errors.js';
import { jsonPathText } from './json-path.js';
import type { Kubectl } from './kubectl.js';

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** What is awaited, for the error message ("pod payments/web-1 Ready"). */
  readonly what: string;
}

/** Calls `read` until `predicate` holds on its result; the last result (or read error) goes into the timeout error. */
export async function waitFor<T>(read: () => Promise<T>, predicate: (value: T) => boolean, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'nothing read yet';
  for (;;) {
    try {
      const value = await read();
      if (predicate(value)) return value;
      last = describe(value);
    } catch (error) {
      last = `error: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() >= deadline) {
      throw new GatehouseError('GH_ERR_E2E_WAIT_TIMEOUT', { timeoutMs: options.timeoutMs, what: options.what, last });
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
  }
}

export interface ObjectRef {
  /** A kubectl resource name: `pod`, `accesspolicies.gatehouse.dev`, ... */
  readonly resource: string;
  readonly name: string;
  readonly namespace?: string;
}

/** Polls `kubectl get RESOURCE NAME -o json` until `predicate` holds; returns the object. */
export function waitForObject<T = Record<string, unknown>>(
  kubectl: Kubectl,
  ref: ObjectRef,
  predicate: (object: T) => boolean,
  options: Omit<WaitOptions, 'what'> & { what?: string },
): Promise<T> {
  const args = ['get', ref.resource, ref.name, ...(ref.namespace ? ['-n', ref.namespace] : [])];
  const what = options.what ?? `${ref.resource} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
  return waitFor(() => kubectl.json<T>(args), predicate, { ...options, what });
}

/** Waits until the JSONPath expression (kubectl syntax) prints `expected`. */
export function waitForJsonPath(kubectl: Kubectl, ref: ObjectRef, expression: string, expected: string, options: Omit<WaitOptions, 'what'>): Promise<unknown> {
  const what = `${ref.resource} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} ${expression} = ${JSON.stringify(expected)}`;
  return waitForObject<unknown>(kubectl, ref, (object) => jsonPathText(object, expression) === expected, { ...options, what });
}

/** Waits until the object is gone (kubectl reports NotFound). */
export function waitForDeletion(kubectl: Kubectl, ref: ObjectRef, options: Omit<WaitOptions, 'what'>): Promise<unknown> {
  const args = ['get', ref.resource, ref.name, ...(ref.namespace ? ['-n', ref.namespace] : []), '-o', 'name'];
  return waitFor(() => kubectl(args), (result) => result.exitCode !== 0 && /NotFound|not found/.test(result.stderr), {
    ...options,
    what: `${ref.resource} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} to be deleted`,
  });
}

const MAX_SHOWN_CHARS = 4000;

function describe(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(readable(value), null, 2);
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}… (${text.length} chars)` : text;
}

/** A Kubernetes object with its status first and bookkeeping dropped, so a truncated message still shows what matters. */
function readable(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { status, metadata, ...rest } = value as Record<string, unknown>;
  if (typeof metadata !== 'object' || metadata === null) return value;
  const { managedFields: _managedFields, annotations, ...meta } = metadata as Record<string, unknown>;
  const { 'kubectl.kubernetes.io/last-applied-configuration': _lastApplied, ...otherAnnotations } = (annotations ?? {}) as Record<string, unknown>;
  const shownMeta = Object.keys(otherAnnotations).length > 0 ? { ...meta, annotations: otherAnnotations } : meta;
  return status === undefined ? { metadata: shownMeta, ...rest } : { status, metadata: shownMeta, ...rest };
}
