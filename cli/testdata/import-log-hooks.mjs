// Module hooks for a test: appends every resolved module URL to the file named by GATEHOUSE_IMPORT_LOG.
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (process.env.GATEHOUSE_IMPORT_LOG) appendFileSync(process.env.GATEHOUSE_IMPORT_LOG, `${resolved.url}\n`);
  return resolved;
}
