/**
 * The seam to Aedes' per-connection $SYS notices (docs/internals.md, row A21): aedes.js
 * `_finishRegisterClient` publishes `$SYS/<id>/new/clients` on every CONNECT and
 * `unregisterClient` `$SYS/<id>/disconnect/clients` on every close, each a whole
 * broker.publish (packet, publish series, emitter match): ~2.4% of a node's CPU while clients
 * connect and disconnect (issue 15, connects/s). test/seam/contract.test.ts checks it.
 *
 * On one node (no cluster: no other node takes over a client id through `new/clients`) a notice
 * nobody hears is not published. "Heard" = a listener other than Aedes' own (closeSameClients,
 * or the one seam/aedes-new-clients.ts puts in its place for V6, which act only on other nodes'
 * notices) matches the topic in the emitter (mqemitter `_matcher`, row E1): a client's subscription to
 * `$SYS/+/new/clients`, `$SYS/#` or `#` (Aedes filters `$SYS` out of `#` later, at delivery),
 * or the shared-subscription hook while a group exists. When heard, the notice goes out as before.
 *
 * In a cluster every node must hear `new/clients` (a node closes its own connection of a client
 * id another node took over, V6): it always goes out. `disconnect/clients` is for subscribers
 * only: it goes out when heard here or when `elsewhere(topic)` says another node may hear it (a
 * subscription there, as cluster/interest.ts knows them, or a view not yet complete). Each close
 * then no longer costs a bus message that every other node decodes, matches and reports progress
 * on (issue 15, cluster connects: ~10% of the other nodes' CPU per connect+close).
 */
import type { Aedes, Client } from 'aedes'

type Listener = (...args: unknown[]) => void
type Publish = (this: unknown, ...args: unknown[]) => void
/** Aedes' broker instance (aedes.js): the undocumented fields this module touches */
interface SysInternals {
  id: string
  mq: { _matcher: { match(topic: string): Listener[] } }
  publish: Publish
  _finishRegisterClient(client: Client): void
  unregisterClient(client: Client): void
}

/**
 * Call after every internal listener of the emitter is on (Aedes' own, and onRemoteTakeover's):
 * those found now on the two topics count as Aedes' own. `elsewhere` (cluster mode): whether a
 * subscriber on another node may hear a topic; with it, `new/clients` is always published.
 */
export function publishClientNoticesWhenHeard(broker: Aedes, elsewhere?: (topic: string) => boolean): void {
  const b = broker as unknown as SysInternals
  if (typeof b._finishRegisterClient !== 'function' || typeof b.unregisterClient !== 'function') {
    throw new Error('aedes internals: no _finishRegisterClient / unregisterClient on the broker')
  }
  const matcher = b.mq._matcher
  const topics = [`$SYS/${b.id}/new/clients`, `$SYS/${b.id}/disconnect/clients`] as const
  const own = new Set(topics.flatMap((t) => matcher.match(t)))
  const here = (topic: string): boolean => matcher.match(topic).some((fn) => !own.has(fn))
  if (!elsewhere) wrap(b, '_finishRegisterClient', topics[0], here)
  wrap(b, 'unregisterClient', topics[1], elsewhere ? (topic) => here(topic) || elsewhere(topic) : here)
}

function wrap(b: SysInternals, method: '_finishRegisterClient' | 'unregisterClient', topic: string, heard: (topic: string) => boolean): void {
  const original = b[method]
  b[method] = function (this: SysInternals, client: Client): void {
    if (heard(topic)) return original.call(this, client)
    // only the notice is left out: the 'client' / 'clientDisconnect' listeners Aedes emits to
    // before it (synchronously, inside `original`) publish as usual
    const publish = this.publish
    this.publish = function (this: unknown, ...args: unknown[]): void {
      const packet = args[0] as { topic?: string } | undefined
      if (packet?.topic !== topic) return publish.apply(this, args)
      const done = args[args.length - 1]
      if (typeof done === 'function') (done as () => void)()
    }
    try {
      original.call(this, client)
    } finally {
      this.publish = publish
    }
  }
}
