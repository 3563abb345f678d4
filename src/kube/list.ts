// The list half of an informer, as raw JSON and in pages. client-node's typed list calls build
// model objects (Date timestamps, no kind) from the parsed JSON, which the informer boundary then
// converts back to the wire shape: three copies of every object alive at once. Listing 10,000 pods
// that way made the operator's peak memory. Here every page is parsed once, its items get kind
// and apiVersion in place (as watch events have them), and pages of `limit` objects keep the
// response text small (the API server's consistent pagination, as client-go's pager does).
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { rest } from './rest.ts';

/** Objects per page: client-go's pager default. */
export const LIST_PAGE_SIZE = 500;

export interface ListOptions<T = KubernetesObject> {
  labelSelector?: string;
  /** A KEP-5866 shard selector (src/safety/sharding.ts shardSelector); ignored by servers without the gate. */
  shardSelector?: string;
  /** Objects per page (default LIST_PAGE_SIZE). */
  limit?: number;
  /**
   * Applied to each item as its page arrives (e.g. the cache's projection), so the full objects
   * of one page are garbage before the next is read, instead of every full object at once.
   */
  transform?: (item: T) => T;
  signal?: AbortSignal;
}

interface RawList<T> {
  kind?: string;
  apiVersion?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/**
 * GETs every page of a collection (e.g. /api/v1/namespaces/ns/pods) and returns one list with
 * the resourceVersion of the snapshot. A failed page throws client-node's ApiException (see
 * rest.ts), a 410 on an expired continue token included.
 */
export async function listAll<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  opts: ListOptions<T> = {},
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let resourceVersion: string | undefined;
  let listKind = '';
  let apiVersion = '';
  let next: string | undefined;
  // A bounded loop: every page but the last carries a continue token, and a collection ends.
  for (let page = 0; page < 1_000_000; page++) {
    const text = await rest(kc, {
      method: 'GET',
      path,
      query: {
        limit: String(opts.limit ?? LIST_PAGE_SIZE),
        labelSelector: opts.labelSelector,
        shardSelector: opts.shardSelector,
        continue: next,
      },
      signal: opts.signal,
    });
    const list = JSON.parse(text) as RawList<T>;
    listKind ||= list.kind ?? '';
    apiVersion ||= list.apiVersion ?? '';
    // The snapshot's version is the first page's; later pages repeat it.
    resourceVersion ??= list.metadata?.resourceVersion;
    const kind = listKind.endsWith('List') ? listKind.slice(0, -'List'.length) : listKind;
    for (const item of list.items ?? []) {
      item.kind ??= kind;
      item.apiVersion ??= apiVersion;
      items.push(opts.transform ? opts.transform(item) : item);
    }
    next = list.metadata?.continue || undefined;
    if (!next) break;
  }
  return { apiVersion, kind: listKind, metadata: { resourceVersion }, items };
}
