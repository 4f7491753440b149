/**
 * An acknowledgement of the wrong kind is a protocol violation [MQTT-4.8.0-1]:
 * a PUBREC or PUBCOMP for a message the server sent at QoS 1, or a PUBACK for
 * one it sent at QoS 2 (QoS 1 is answered by PUBACK [MQTT-4.3.2-1], QoS 2 by
 * PUBREC then PUBCOMP [MQTT-4.3.3-1]). Aedes (1.2 and 2.0.0-beta.1) answers a PUBREC with a PUBREL
 * whatever the message was and takes any of them as the end of the flow.
 *
 * The QoS of every message id in flight to the client is recorded as it is
 * written (seam/mqtt-writes.ts onWrite, which also sees the messages a session
 * resends on reconnect) and forgotten at its PUBACK or PUBCOMP. An ack for an id
 * the server does not know is left to Aedes as before (it is ignored).
 * Cost: one Map set and delete per QoS 1/2 message to a client.
 */
import type { Aedes, Client } from 'aedes'
import { onWriteOfEachClient } from '../seam/index.js'

export interface AckTracker {
  /** the violation this incoming packet of `client` is, if any */
  check(packet: { cmd: string; messageId?: number }, client: Client): Error | undefined
}

/** the acks of every client of `broker` (one hook per broker; a client's Map is made on its first QoS 1/2 message: an idle connection holds none, issue 15) */
export function trackAcks(broker: Aedes): AckTracker {
  const inFlightOf = new WeakMap<Client, Map<number, number>>()
  onWriteOfEachClient(broker, 'conformance', (p, client) => {
    if (p.cmd !== 'publish' || !p.qos || p.messageId === undefined) return
    let inFlight = inFlightOf.get(client)
    if (!inFlight) inFlightOf.set(client, (inFlight = new Map()))
    inFlight.set(p.messageId, p.qos)
  }, ['publish'])
  return {
    check(packet, client) {
      if (packet.messageId === undefined) return undefined
      const inFlight = inFlightOf.get(client)
      const qos = inFlight?.get(packet.messageId)
      switch (packet.cmd) {
        case 'puback':
          if (qos === 2) return new Error('[MQTT-4.8.0-1] PUBACK for a QoS 2 message')
          inFlight?.delete(packet.messageId)
          return undefined
        case 'pubrec':
          if (qos === 1) return new Error('[MQTT-4.8.0-1] PUBREC for a QoS 1 message')
          return undefined
        case 'pubcomp':
          if (qos === 1) return new Error('[MQTT-4.8.0-1] PUBCOMP for a QoS 1 message')
          inFlight?.delete(packet.messageId)
          return undefined
        default:
          return undefined
      }
    },
  }
}
