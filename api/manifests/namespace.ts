// Where an object lives when its manifest names no namespace. Kept apart from the manifest loader so
// the sidecar, which only needs this, does not load the loader's schema validator and YAML parser.

/** The namespace of objects whose manifest names none, as kubectl applies them. */
export const DEFAULT_NAMESPACE = 'default';

export function namespaceOf(object: { readonly metadata: { readonly namespace?: string } }): string {
  return object.metadata.namespace ?? DEFAULT_NAMESPACE;
}
