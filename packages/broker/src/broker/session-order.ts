/**
 * Order of a persistent session's messages on reconnect [MQTT-4.6.0-6].
 *
 * When a `clean: false` client reconnects, Aedes restores its subscriptions
 * first and then replays the session's queue. In a cluster a message
 * published on another node just before the reconnect is both in that queue
 * and still on its way over the cluster bus; if the bus copy lands between
 * the two steps it is delivered live ahead of older queued messages (the
 * queued copy is then dropped as a duplicate), so the client sees 18, 19, 0,
 * 1, ... Here live deliveries to such a client wait until the replay is done
 * (Aedes emits `clientReady`) and then go out in their order; the duplicate
 * filter drops those the queue already delivered. Cost on the message path:
 * one property check per delivery.
 */
import type { Aedes, Client } from 'aedes'

type Callback = (err?: Error | null) => void
type Deliver = (packet: unknown, cb: Callback) => void

interface ClientInternals {
  connected: boolean
  clean: boolean
  deliverQoS: Deliver
  once(event: 'close' | 'error', fn: () => void): unknown
}

export function orderSessionReplay(broker: Aedes): void {
  const holding = new WeakMap<object, Array<[unknown, Callback]>>()
  const handle = broker.handle
  broker.handle = (stream, req) => {
    const client = handle(stream, req)
    const c = client as unknown as ClientInternals
    const deliver = c.deliverQoS
    c.deliverQoS = (packet, cb) => {
      // connected: normal path; clean sessions have no queue to replay
      if (c.connected || c.clean !== false) return deliver(packet, cb)
      let held = holding.get(c)
      if (!held) holding.set(c, (held = []))
      held.push([packet, cb])
    }
    return client
  }
  broker.on('clientReady', (client: Client) => {
    const held = holding.get(client)
    if (!held) return
    holding.delete(client)
    const c = client as unknown as ClientInternals
    for (const [packet, cb] of held) c.deliverQoS(packet, cb)
  })
  broker.on('clientDisconnect', (client: Client) => release(client))
  broker.on('clientError', (client: Client) => release(client))
  function release(client: Client): void {
    const held = holding.get(client)
    if (!held) return
    holding.delete(client)
    for (const [, cb] of held) cb()
  }
}
