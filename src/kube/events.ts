// Kubernetes Events, deduplicated: the same (object, reason, message) is recorded at most once per
// window, so a stuck condition or a long failsafe hold cannot flood etcd with Events.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';

export interface ObjectReference {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventSink {
  /** Records an Event about obj unless the same one was recorded within the dedupe window. */
  record(obj: ObjectReference, type: EventType, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  core: CoreV1Api;
  now: () => number;
  /** reportingInstance, e.g. the operator pod's name. */
  instance: string;
  windowMs?: number;
  maxKeys?: number;
  onError?: (err: unknown) => void;
  /**
   * Events are recorded only while this says so for the object: the leader fence (a standby
   * records nothing), or sharded, the fence of the pod's bucket (docs/sharding.md).
   */
  allowed?: (obj: ObjectReference, reason: string) => boolean;
}

/** Creates core/v1 Events; fire-and-forget, failures go to onError and never to the caller. */
export class EventRecorder implements EventSink {
  private readonly seen = new Map<string, number>();
  private readonly opts: Required<EventRecorderOptions>;

  constructor(opts: EventRecorderOptions) {
    this.opts = { windowMs: 10 * 60_000, maxKeys: 10_000, onError: () => {}, allowed: () => true, ...opts };
  }

  record(obj: ObjectReference, type: EventType, reason: string, message: string): void {
    if (!this.opts.allowed(obj, reason)) return;
    const now = this.opts.now();
    const key = `${obj.uid ?? `${obj.namespace}/${obj.name}`}\u0000${reason}\u0000${message}`;
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.opts.windowMs) return;
    this.seen.delete(key);
    this.seen.set(key, now);
    // Map iteration order is insertion order: the first key is the oldest.
    if (this.seen.size > this.opts.maxKeys) this.seen.delete(this.seen.keys().next().value as string);
    const time = new Date(now);
    void this.opts.core
      .createNamespacedEvent({
        namespace: obj.namespace,
        body: {
          metadata: { name: `${obj.name}.${randomBytes(8).toString('hex')}`, namespace: obj.namespace },
          involvedObject: obj,
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: 'readygate' },
          reportingComponent: 'readygate.dev/operator',
          reportingInstance: this.opts.instance,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      })
      .catch((err: unknown) => this.opts.onError(err));
  }
}
