// One watch request: replays from the requested resourceVersion (or sends the current objects as ADDED
// when none is given), then streams live events as JSON lines, with BOOKMARKs when asked, until
// timeoutSeconds, a dropped watch or the client leaving. Too old a resourceVersion gets an ERROR event
// carrying a 410 Gone Status, as from the real server.
import type { ServerResponse } from 'node:http';
import { badRequest } from './api-status.js';
import type { KubeObject } from './objects.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceTarget } from './request-target.js';
import { apiVersionOf, typeKey } from './resource-types.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { toTable } from './table-output.js';
import type { ChangeEvent, WatchHub } from './watch-hub.js';

export interface WatchOptions {
  readonly bookmarkIntervalMs: number;
  /** Events carry one-row Tables (kubectl get --watch); column definitions only in the first. */
  readonly asTable?: boolean;
}

export function serveWatch(
  response: ServerResponse,
  target: ResourceTarget,
  query: URLSearchParams,
  store: ObjectStore,
  hub: WatchHub,
  options: WatchOptions,
): void {
  const labels = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const matches = (object: KubeObject): boolean =>
    (!target.type.namespaced || target.namespace === undefined || object.metadata.namespace === target.namespace)
    && (target.name === undefined || object.metadata.name === target.name)
    && labels(object) && fields(object);
  const apiVersion = apiVersionOf(target.type.group, target.version);
  const present = (object: KubeObject): KubeObject => {
    const { apiVersion: _a, kind: _k, ...rest } = object;
    return { apiVersion, kind: target.type.kind, ...rest } as KubeObject;
  };
  const requested = query.get('resourceVersion') ?? '';
  if (requested !== '' && !/^\d+$/.test(requested)) throw badRequest(`invalid resource version: ${requested}`);

  response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  // Clients wait for the headers before reading events; a quiet watch must not hold them back.
  response.flushHeaders();
  let columnsSent = false;
  const send = (type: string, object: unknown): void => {
    let payload = object;
    if (options.asTable === true && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED')) {
      const objectMeta = (object as KubeObject).metadata;
      payload = toTable(target.type, target.version, [object as KubeObject], { resourceVersion: objectMeta.resourceVersion }, !columnsSent);
      columnsSent = true;
    }
    response.write(`${JSON.stringify({ type, object: payload })}\n`);
  };
  const from = requested === '' || requested === '0' ? store.currentResourceVersion : Number(requested);
  if (!hub.canReplayFrom(from)) {
    send('ERROR', {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Expired', code: 410,
      message: `too old resource version: ${from} (${store.currentResourceVersion})`,
    });
    response.end();
    return;
  }
  if (requested === '' || requested === '0') {
    for (const object of store.list(target.type, target.namespace)) if (matches(object)) send('ADDED', present(object));
  }
  let finished = false;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    if (finished) return;
    finished = true;
    subscription.close();
    for (const timer of timers) clearTimeout(timer);
    if (!response.writableEnded) response.end();
  };
  const allowBookmarks = query.get('allowWatchBookmarks') === 'true';
  const bookmark = (): void => send('BOOKMARK', { kind: target.type.kind, apiVersion, metadata: { resourceVersion: String(store.currentResourceVersion) } });
  const subscription = hub.subscribe(typeKey(target.type.group, target.type.plural), from, (event: ChangeEvent) => {
    if (finished) return;
    const type = eventTypeFor(event, matches);
    if (type !== undefined) send(type, present(event.object));
  }, finish);
  if (allowBookmarks) timers.push(setInterval(bookmark, options.bookmarkIntervalMs));
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
  if (timeoutSeconds > 0) timers.push(setTimeout(() => {
    if (allowBookmarks) bookmark();
    finish();
  }, timeoutSeconds * 1000));
  response.on('close', finish);
}


/**
 * What a filtered watch reports, as the real server does: a change that moves an object into the
 * selection is ADDED, out of it DELETED, within it MODIFIED; changes outside it are not sent.
 */
function eventTypeFor(event: ChangeEvent, matches: (object: KubeObject) => boolean): string | undefined {
  const now = matches(event.object);
  if (event.type !== 'MODIFIED') return now ? event.type : undefined;
  const before = event.previous === undefined ? now : matches(event.previous);
  if (now && before) return 'MODIFIED';
  if (now) return 'ADDED';
  return before ? 'DELETED' : undefined;
}
