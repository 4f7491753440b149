/**
 * Exact per-client duplicate filter (aedes#955, fix proposed upstream in
 * aedes PR #972, not merged).
 *
 * Aedes drops a message for a client unless its `brokerCounter` is higher
 * than the last one seen from the same broker. That only holds if every
 * broker's messages arrive in counter order, and they do not: a QoS 1/2
 * publish first enqueues for offline sessions (a Redis round trip) and is
 * emitted afterwards, so a QoS 0 publish with a higher counter overtakes it
 * and the QoS 1 message is then silently dropped. The filter is only meant to
 * stop one message reaching a client twice (e.g. through overlapping filters
 * `a/#` and `a/b`, aedes#37), and those copies are delivered back to back by
 * mqemitter, so a small window of recently seen (broker, counter) pairs per
 * client is exact for that purpose and never drops a different message.
 *
 * The stock filter is switched off by giving every client a `duplicates` map
 * that always reads 0; ours runs in the broker's authorizeForward hook.
 * The hot path allocates nothing: one fixed ring per client.
 */
import type { Aedes } from 'aedes'
import { installOnEachClient, raiseMessageCounter, replaceDuplicateFilter } from '../seam/index.js'

const WINDOW = 32
const STATE = Symbol('culex.dedupe')

interface Ring {
  ids: Array<string | undefined>
  counters: number[]
  next: number
}

/** what the stock filter reads: every broker's last counter is 0, so nothing is dropped */
const passAll: Record<string, number> = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => 0,
  set: () => true,
  deleteProperty: () => true,
})

/** replace the stock monotonic filter on every new client (before any subscription exists) */
export function installExactDedupe(broker: Aedes): void {
  installOnEachClient(broker, 'dedupe', (client) => replaceDuplicateFilter(client, passAll))
}

/**
 * Brokers restart with the same node id; Aedes starts `brokerCounter` at 0,
 * so a restarted node would reuse `packet:<node>:<counter>` keys of messages
 * still queued in Redis for offline clients and overwrite them. Start the
 * counter from the clock (microseconds since the epoch stay below 2^53).
 */
export function seedCounter(broker: Aedes): void {
  raiseMessageCounter(broker, Date.now() * 1000)
}

/** true if this client already got this exact message (same broker, same counter) */
export function seenBefore(client: object, packet: { brokerId?: string | null; brokerCounter?: number | string }): boolean {
  const id = packet.brokerId
  if (!id) return false // retained deliveries carry no broker id and are never deduplicated
  const counter = Number(packet.brokerCounter)
  const holder = client as { [STATE]?: Ring }
  let ring = holder[STATE]
  if (ring === undefined) {
    ring = { ids: new Array<string | undefined>(WINDOW), counters: new Array<number>(WINDOW).fill(-1), next: 0 }
    holder[STATE] = ring
  }
  const { ids, counters } = ring
  for (let i = 0; i < WINDOW; i++) {
    if (counters[i] === counter && ids[i] === id) return true
  }
  ids[ring.next] = id
  counters[ring.next] = counter
  ring.next = (ring.next + 1) % WINDOW
  return false
}
