/**
 * The seam to Aedes' listener on `$SYS/+/new/clients` (docs/internals.md rows V6 and A22): aedes.js
 * `closeSameClients`, which closes the local connection of the client id another node announces
 * (its `$SYS/<node>/new/clients` notice, published by `_finishRegisterClient` on each CONNECT).
 * Culex changes what that listener does twice (V6: a v5 client is told DISCONNECT 0x8E first; A22,
 * in a cluster: only a connection that lost its session in Redis is closed): both go through
 * wrapNewClientsListener, which stacks their wrappers on Aedes' listener behind one listener of
 * the emitter. Aedes' own is found by name in the emitter's matcher (mqemitter `_matcher`) and
 * removed once; the one put in its place (`culexCloseSameClients`) stays for the broker's life.
 */
import type { Aedes, Client } from 'aedes'

export type NewClientsDone = (err?: Error | null) => void
/** a listener of `$SYS/+/new/clients`: the notice's topic names the node, its payload the client id */
export type NewClientsListener = (packet: { topic: string; payload: Buffer }, done: NewClientsDone) => void
/** the broker fields (aedes.js) a wrapper may read */
export interface NewClientsBroker {
  /** this node's id (`$SYS/<id>/...`) */
  id: string
  /** the connected clients by id */
  clients: Record<string, Client & { closed?: boolean }>
  publish(packet: { topic: string; payload: Buffer }, done: () => void): void
}
interface EmitterFields extends NewClientsBroker {
  mq: {
    on(topic: string, fn: NewClientsListener, done?: () => void): unknown
    removeListener(topic: string, fn: NewClientsListener, done?: () => void): unknown
    _matcher: { match(topic: string): NewClientsListener[] }
  }
}
export const NEW_CLIENTS = '$SYS/+/new/clients'

/** per broker: the listener the emitter's one calls, Aedes' own wrapped by each call of wrapNewClientsListener so far */
const stacks = new WeakMap<object, { top: NewClientsListener }>()

/**
 * Put `wrap(inner)` in the place of the listener `$SYS/+/new/clients` notices go to: `inner` is
 * Aedes' `closeSameClients` for the first call, the previous wrapper for each later one (the
 * last call's wrapper runs first). Throws when Aedes has no such listener.
 */
export function wrapNewClientsListener(broker: Aedes, wrap: (inner: NewClientsListener, broker: NewClientsBroker) => NewClientsListener): void {
  const b = broker as unknown as EmitterFields
  let stack = stacks.get(b)
  if (!stack) {
    const own = b.mq._matcher.match('$SYS/x/new/clients').find((fn) => fn.name === 'closeSameClients')
    if (!own) throw new Error("aedes internals: no 'closeSameClients' listener on $SYS/+/new/clients")
    const s = (stack = { top: own })
    stacks.set(b, s)
    b.mq.removeListener(NEW_CLIENTS, own)
    b.mq.on(NEW_CLIENTS, function culexCloseSameClients(packet, done) {
      s.top(packet, done)
    })
  }
  stack.top = wrap(stack.top, b)
}
