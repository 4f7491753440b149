/**
 * The seam to the packets aedes 2.0.0-beta.1 writes to and accepts from MQTT 5 clients where
 * Culex's answer differs (docs/internals.md rows V1-V3, test/seam/contract-v5.test.ts): the
 * CONNACK's properties, the SUBACK's and UNSUBACK's reason codes, `$share/` filters. Split from
 * seam/aedes-v5.ts.
 */
import type { Aedes, Client } from 'aedes'
import { parserOf, wrapQueuedPacketHandlingOfEachClient } from './aedes-client.js'
import { aroundPacketsOfEachClient, onWriteOfEachClient } from './client-hooks.js'
import type { OutPacket } from './mqtt-writes.js'
import { v5, type V5Fields } from './aedes-v5-fields.js'

/**
 * V1 `amend` may change the properties of the successful CONNACK of a v5 client before it is
 * written: lib/handlers/connect.js connackProperties builds them from a few broker fields and
 * hard-codes `sharedSubscriptionAvailable: false` (aedes#841: no shared subscriptions upstream);
 * there is no option for the rest (no upstream issue found). One write hook per broker (stage
 * 'mqtt5'): a 3.1.1 client costs nothing but the version check per packet written.
 */
export function amendConnack(broker: Aedes, amend: (properties: Record<string, unknown>) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd !== 'connack' || v5(client).version !== 5 || (p.reasonCode ?? 0) !== 0) return
    p.properties = { ...p.properties }
    amend(p.properties)
  }, ['connack'])
}

/** V2 `amend` sees every SUBACK written to a v5 client (its reason codes, in the order of the filters) */
export function amendSuback(broker: Aedes, amend: (packet: OutPacket, client: Client) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd === 'suback' && v5(client).version === 5) amend(p, client)
  }, ['suback'])
}

/** V2 `amend` sees every UNSUBACK written to a v5 client (its reason codes, in the order of the filters: `granted`) */
export function amendUnsuback(broker: Aedes, amend: (packet: OutPacket, client: Client) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd === 'unsuback' && v5(client).version === 5) amend(p, client)
  }, ['unsuback'])
}

const SHARE = '$share/'
interface QueuedSubscribe {
  cmd: string
  subscriptions?: Array<{ topic: string }>
}
const hasShareFilter = (packet: QueuedSubscribe): boolean => packet.cmd === 'subscribe' && !!packet.subscriptions?.some((s) => s.topic.startsWith(SHARE))

/** run `handle` with the Client's `version` reading 4 (V3) */
function asVersion4(c: V5Fields, handle: () => void): void {
  c.version = 4
  try {
    handle()
  } finally {
    c.version = 5
  }
}

/**
 * V3 lib/handlers/subscribe.js doSubscribe answers a v5 client's `$share/` filter with 0x9E
 * (Shared Subscriptions not supported) before the authorizeSubscribe hook sees it (aedes#841).
 * Culex has shared subscriptions (src/shared/, through that hook): while Aedes starts handling a
 * v5 SUBSCRIBE with a `$share/` filter, the Client's `version` reads 4, so that check passes.
 * The check runs synchronously in the handler; so does a refusal by an authorizeSubscribe hook
 * that calls back at once, which then writes the 3.1.1 code 0x80 (amendSuback can map it back).
 * A SUBSCRIBE the client sent before its CONNACK waits in the parser's `_queue` (lib/client.js
 * enqueue) until the Client's 'connected' listener (dequeue) handles the queue, synchronously,
 * one packet after the other: that listener is then given the queue one packet at a time
 * (`_queue` set to that packet; dequeue sets it to null after each), a `$share/` SUBSCRIBE with
 * `version` reading 4.
 */
export function acceptV5SharedFilters(broker: Aedes): void {
  aroundPacketsOfEachClient<QueuedSubscribe>(broker, 'mqtt5', {
    before(packet, client) {
      const c = v5(client)
      if (c.version !== 5 || !hasShareFilter(packet)) return false
      c.version = 4
      return true
    },
    after(_packet, client) {
      v5(client).version = 5
    },
  }, ['subscribe'])
  // wrapped only for a client whose parser queued packets before its CONNACK (aedes-client.ts)
  wrapQueuedPacketHandlingOfEachClient(broker, 'mqtt5', (client, dequeue) => (...args) => {
    const c = v5(client)
    const parser = parserOf(client) as unknown as { _queue: QueuedSubscribe[] | null }
    const queue = parser._queue
    if (c.version !== 5 || !queue || !queue.some(hasShareFilter)) return dequeue(...args)
    for (const packet of queue) {
      parser._queue = [packet]
      if (hasShareFilter(packet)) asVersion4(c, () => dequeue(...args))
      else dequeue(...args)
    }
    parser._queue = null
  })
}
