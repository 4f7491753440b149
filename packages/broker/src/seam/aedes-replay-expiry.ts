/**
 * Row A24 (docs/internals.md, contract in test/seam/contract-replay-expiry.test.ts): message
 * expiry stops once a message was sent (MQTT 5.0 §3.3.2.3.3, §4.3.3). A QoS 1/2 message a session
 * received but did not acknowledge goes out again when the session returns, even if its Message
 * Expiry Interval passed meanwhile [MQTT-4.3.3-7] (QoS 2: "the sender MUST NOT apply message
 * expiry if a PUBLISH packet has been sent"); [MQTT-3.3.2-5] deletes only the copies whose onward
 * delivery had not started.
 *
 * aedes 2.0.0-beta.1 lib/handlers/connect.js emptyQueue drops every expired entry of the queue it
 * replays at CONNECT, sent or not: clearQueue wraps each entry in a QoSPacket (aedes-packet copies
 * `messageExpiry`, the absolute expiry in ms, and `dup`), calls `persistence.outgoingUpdate(client,
 * packet)` (looked up at call time) and then emptyQueueFilter clears instead of writing a packet
 * whose `messageExpiry <= Date.now()`. A replayed entry sent before carries DUP 1 (Culex's replay:
 * broker/redelivery.ts in memory mode, cluster/outgoing.ts in Redis mode; live deliveries go
 * out with DUP 0 [MQTT-3.3.1-3]): such an entry past its expiry loses `messageExpiry` in its
 * outgoingUpdate, before that check, and goes out with a Message Expiry Interval of 1 (the
 * remaining time [MQTT-3.3.2-6] is spent; as the shared subscriptions' resend, shared/delivery.ts).
 * Entries never sent still expire. Cost: one comparison per QoS 1/2 send of a persistent session.
 * No upstream issue found (upstream could keep `messageExpiry` off entries once sent).
 */
import type { Aedes } from 'aedes'
import { wrapOutgoingAcks } from './aedes-routing.js'

interface Replayed {
  cmd?: string
  dup?: boolean
  messageExpiry?: number
  properties?: Record<string, unknown>
}

export function keepSentMessagesPastExpiry(broker: Aedes): void {
  wrapOutgoingAcks(broker, ({ outgoingUpdate }) => ({
    outgoingUpdate: (client, packet) => {
      const p = packet as unknown as Replayed
      if (p.dup === true && p.cmd === 'publish' && p.messageExpiry !== undefined && p.messageExpiry <= Date.now()) {
        delete p.messageExpiry
        p.properties = { ...p.properties, messageExpiryInterval: 1 }
      }
      return outgoingUpdate(client, packet)
    },
  }))
}
