/**
 * The id of each QoS 1/2 message as its publish starts, and the same message published again
 * without its hooks (docs/internals.md row A26; cluster/replica-acks.ts: a Redis failover that
 * crossed a batch). Aedes internals:
 *
 * - `broker.publish` (aedes.js) replaced on the instance: the entry of every publish (client ones
 *   through lib/handlers/publish.js, wills, $SYS, Culex's own); it makes the message's Packet
 *   (aedes-packet: `brokerId = original.brokerId || broker.id`, `brokerCounter =
 *   original.brokerCounter || ++broker.counter`) synchronously, so a packet without an id gets
 *   `broker.id:broker.counter + 1`, read before the call
 * - `broker.published` (the `published` option, an instance property aedes.js callPublished reads
 *   at call time with the packet object given to publish) and `broker.emit('publish', packet,
 *   client)` right after it: both skipped for a message published again, which ran them the
 *   first time
 *
 * No upstream issue found (Aedes has no "publish again" entry; upstream could pass an option to
 * publish that skips callPublished).
 */
import type { Aedes } from 'aedes'

type Done = (err?: Error | null) => void
/** the fields of a packet that name its message across the cluster */
export interface MessageIds {
  qos?: number
  brokerId?: string
  brokerCounter?: number | string
}
/** `<brokerId>:<brokerCounter>`: one message across the cluster (the Redis key `packet:<node>:<counter>` too) */
export const messageKey = (p: MessageIds): string => `${p.brokerId}:${Number(p.brokerCounter)}`

interface PublishInternals {
  id: string
  counter: number
  publish(packet: MessageIds, client: unknown, done?: Done): void
  published(packet: unknown, client: unknown, done: Done): void
  emit(event: string | symbol, ...args: unknown[]): boolean
}

export interface QoSPublishWatch {
  /** a QoS 1/2 publish starts; `id` is its message's messageKey */
  started(id: string): void
  /** that publish is done (or failed) */
  finished(id: string): void
}
/** publish a message again with its own ids, through every wrapper of broker.publish; no `published` hook, no 'publish' event */
export type Republish = (packet: MessageIds, done: Done) => void

/**
 * Tell `watch` when each QoS 1/2 publish starts and ends, by the id of its message; returns the
 * function that publishes a message again (once per broker: a second call wraps again)
 */
export function watchQoSPublishes(broker: Aedes, watch: QoSPublishWatch): Republish {
  const b = broker as unknown as PublishInternals
  const publish = b.publish.bind(b)
  b.publish = (packet, client, done) => {
    if (typeof client === 'function') return b.publish(packet, null, client as Done)
    if (!packet || !(Number(packet.qos) > 0)) return publish(packet, client, done)
    // the id the message will have: its own (a will, a re-publish), else the next counter (aedes-packet)
    const id = packet.brokerId && packet.brokerCounter ? messageKey(packet) : `${b.id}:${b.counter + 1}`
    watch.started(id)
    publish(packet, client, (err) => {
      watch.finished(id)
      done?.(err)
    })
  }
  // the packet objects being published again: callPublished hands the object given to publish
  const again = new Set<object>()
  const published = b.published
  b.published = function (packet, client, done) {
    // done in the next tick: the 'publish' event callPublished emits right after this call is skipped too
    if (again.size !== 0 && again.has(packet as object)) return process.nextTick(done)
    return published.call(this, packet, client, done)
  }
  const emit = b.emit
  b.emit = function (this: PublishInternals, event: string | symbol, packet?: unknown) {
    if (event === 'publish' && again.size !== 0 && again.has(packet as object)) return false
    // eslint-disable-next-line prefer-rest-params -- every argument as given, no array per event
    return emit.apply(this, arguments as unknown as [string, ...unknown[]])
  }
  return (packet, done) => {
    again.add(packet)
    b.publish(packet, null, (err) => {
      again.delete(packet)
      done(err)
    })
  }
}
