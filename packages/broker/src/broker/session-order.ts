/**
 * Order of a persistent session's messages on reconnect [MQTT-4.6.0-6], each once.
 *
 * When a `clean: false` client reconnects, Aedes restores its subscriptions
 * first and then replays the session's queue. In a cluster a message
 * published on another node just before the reconnect is both in that queue
 * and still on its way over the cluster bus; if the bus copy lands between
 * the two steps it is delivered live ahead of older queued messages, so the
 * client sees 18, 19, 0, 1, ... Here live deliveries to such a client wait
 * until the replay is done (Aedes emits `clientReady`) and then go out in
 * their order. A v5 client's replay goes at the pace of its PUBACKs (its
 * Receive Maximum, limits/client-guard.ts replayRoom): they wait as long,
 * counted as deliveries waiting for the client (the slow-consumer limits of
 * limits/delivery.ts apply), and each stays in the session store meanwhile.
 * A held message the replay sent already (same broker id and counter, seen
 * as the replay passes the broker's authorizeForward) is
 * dropped when the hold is released; one whose bus copy comes after the replay
 * passed it is dropped by the duplicate filter (cluster/dedupe.ts).
 * Cost on the message path: two property checks per delivery.
 */
import type { Aedes, Client } from 'aedes'
import { deliveryOf, stepDeliveriesOfEachClient, wrapAuthorizeForward, type DeliveredPacket, type Done } from '../seam/index.js'

interface Hold {
  packets: Array<[DeliveredPacket, Done]>
  /** broker id and counter of the held messages */
  keys: Set<string>
  /** of those, the ones the replay has sent */
  replayed: Set<string>
}

const keyOf = (p: DeliveredPacket): string | undefined => (p.brokerId ? `${p.brokerId}:${Number(p.brokerCounter)}` : undefined)

export function orderSessionReplay(broker: Aedes): void {
  const holding = new WeakMap<object, Hold>()
  // deliverQoS: the delivery every QoS 1/2 subscription of the client makes (one step per broker,
  // seam/client-hooks.ts); `connected` turns true once the queue is replayed
  stepDeliveriesOfEachClient(broker, 'session-order', 'deliverQoS', (packet, cb, client) => {
    // connected: normal path; clean sessions have no queue to replay
    if (client.connected || client.clean !== false) return false
    let hold = holding.get(client)
    if (!hold) holding.set(client, (hold = { packets: [], keys: new Set(), replayed: new Set() }))
    hold.packets.push([packet, cb])
    const key = keyOf(packet)
    if (key) hold.keys.add(key)
    return true
  })
  // the session replay passes every replayed PUBLISH through authorizeForward
  wrapAuthorizeForward(broker, (authorizeForward) => (client, packet) => {
    const hold = client.connected ? undefined : holding.get(client)
    if (hold) {
      const key = keyOf(packet)
      if (key && hold.keys.has(key)) hold.replayed.add(key)
    }
    return authorizeForward(client, packet)
  })
  broker.on('clientReady', (client: Client) => {
    const hold = holding.get(client)
    if (!hold) return
    holding.delete(client)
    for (const [packet, cb] of hold.packets) {
      const key = keyOf(packet)
      if (key && hold.replayed.has(key)) cb()
      else deliveryOf(client).deliverQoS(packet, cb)
    }
  })
  broker.on('clientDisconnect', (client: Client) => release(client))
  broker.on('clientError', (client: Client) => release(client))
  function release(client: Client): void {
    const hold = holding.get(client)
    if (!hold) return
    holding.delete(client)
    for (const [, cb] of hold.packets) cb()
  }
}
