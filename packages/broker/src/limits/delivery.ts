/**
 * What waits for each client, and what happens when a client cannot keep up.
 *
 * Aedes hands each delivery to mqemitter, which waits for the subscriber's
 * socket to drain before it finishes the message; one subscriber that stops
 * reading holds emitter slots until they run out and every client on the
 * node stalls (for up to drainTimeout). Here delivery returns at once, and:
 *
 * - the bytes written to each client's socket and not yet taken by the kernel
 *   are summed node-wide in `counters.queuedBytes`: the publish gate
 *   (broker/backpressure.ts) stops reading publishers while it is over
 *   delivery_buffer_bytes, the cluster bus asks its peers to hold theirs;
 * - a QoS 0 message for a client that already has more than
 *   `qos0ClientBytes` waiting (it reads slower than the others) is dropped,
 *   so that one slow subscriber does not set the pace of every publisher
 *   (reason subscriber_behind); QoS 1/2 messages wait, holding the publishers;
 * - a client whose socket is backed up and took nothing for a second is
 *   stuck: its bytes leave the node-wide count (it cannot hold the others);
 *   once more than `maxQueued` messages wait for it, or at once when
 *   `maxQueuedBytes` bytes are buffered for its socket, QoS 0 messages for it
 *   are dropped (reason subscriber_stuck) and a QoS 1/2 subscriber is
 *   disconnected (a v5 one with DISCONNECT 0x97 when nothing is buffered for
 *   its socket, cutConnection): a persistent session keeps those messages in the session
 *   store and gets them on reconnect.
 * - at most `maxInflightOut` QoS 1/2 messages are sent to a client and not
 *   yet acknowledged (PUBACK, or PUBCOMP for QoS 2), as Mosquitto's
 *   max_inflight_messages and EMQX's max_inflight: further ones wait here,
 *   in order, and count as bytes waiting for the client (so they hold the
 *   publishers like a full socket does). Without it a subscriber that reads
 *   but acknowledges slowly has every delivery's packet kept for it until
 *   its PUBACK, without bound (a node reached 380 MB under a QoS 1 flood);
 *   a client that reads but acknowledges nothing for a second is stuck,
 *   as above. An MQTT 5 client's Receive Maximum lowers that window for it
 *   [MQTT-3.3.4-9] (aedes#829: Aedes does not honour it), also when
 *   max_outgoing_inflight is 0; a PUBREC with a reason code of 0x80 or more
 *   ends a QoS 2 flight too. The replay of a v5 session's queue at CONNECT
 *   goes through the same window, one message after the other as an
 *   acknowledgement frees a slot (seam/aedes-replay.ts); a 3.1.1 client's
 *   replay is written as Aedes writes it, unwindowed.
 */
import type { Aedes, Client } from 'aedes'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'
import type { ClientFaults } from './client-faults.js'
import { ClientGuard, GUARD, type GuardedConn } from './client-guard.js'
import { onStreamClose } from '../listeners/close-hooks.js'
import { interceptPacketsOfEachClient, onWriteOfEachClient, paceSessionReplay, stepDeliveriesOfEachClient } from '../seam/index.js'

export interface DeliveryOptions {
  maxQueued: number
  maxQueuedBytes: number
  /** QoS 0 for a client with more than this waiting is dropped (qos0_client_buffer_bytes) */
  qos0ClientBytes: number
  /** QoS 1/2 messages sent to one client and not yet acknowledged (max_outgoing_inflight); 0 = no limit */
  maxInflightOut: number
  counters: HotCounters
  log: Logger
  faults: ClientFaults
}

/** the guard of every client of `broker`: the in-flight window sees the PUBLISHes written and the acks received */
export function guardDeliveries(broker: Aedes): void {
  onWriteOfEachClient(broker, 'limits', (pk, client) => {
    if (pk.cmd === 'publish') {
      if (pk.qos && pk.messageId !== undefined) guardOf(client)?.sent(pk.messageId)
    } else if (pk.cmd === 'pubrel' && pk.messageId !== undefined) {
      // a QoS 2 message is in flight until its PUBCOMP [MQTT-4.9.0-2]: the PUBRELs the session
      // replay resends at CONNECT count (a live one's id is counted already)
      guardOf(client)?.sent(pk.messageId)
    }
  }, ['publish', 'pubrel'])
  // PUBACK ends a QoS 1 message's flight, PUBCOMP a QoS 2 one's [MQTT-4.3.2-1] [MQTT-4.3.3-1], and for
  // MQTT 5 a PUBREC with a reason code of 0x80 or more [MQTT-3.3.4-9]
  interceptPacketsOfEachClient<{ cmd: string; messageId?: number; reasonCode?: number }>(broker, 'limits', (pk, client) => {
    if (pk.cmd !== 'puback' && pk.cmd !== 'pubcomp' && !(pk.cmd === 'pubrec' && (pk.reasonCode ?? 0) >= 0x80)) return undefined
    guardOf(client)?.acked(pk.messageId)
    return undefined
  }, ['puback', 'pubcomp', 'pubrec'])
  // the outermost delivery steps (stage 'limits'): the guard takes every delivery and passes it on
  // (continueDelivery) when it goes out
  stepDeliveriesOfEachClient(broker, 'limits', 'deliverQoS', (packet, cb, client) => {
    guardOf(client)!.guardedQoS(packet, cb)
    return true
  })
  stepDeliveriesOfEachClient(broker, 'limits', 'deliver0', (packet, cb, client) => {
    guardOf(client)!.guarded0(packet, cb)
    return true
  })
  // the replay of a v5 session's queue at CONNECT waits for room in the window [MQTT-3.3.4-9]
  paceSessionReplay(broker, (client) => guardOf(client)?.replayRoom())
}
const guardOf = (client: Client): ClientGuard | undefined => (client.conn as unknown as Partial<GuardedConn>)[GUARD]

/** the guard of `client`: it takes the Client's deliveries (guardDeliveries) and counts what its stream (client.conn) holds */
export function guardDelivery(client: Client, opts: DeliveryOptions): void {
  const g = new ClientGuard(client, opts)
  const conn = g.conn
  conn[GUARD] = g
  // Count each write at once (Aedes delivers in a later turn; the gate must see the bytes before
  // the next publish). The kernel taking them is seen at the next resync: after each delivery,
  // on drain, and by the gate while it holds. The stream is the one Aedes writes packets into.
  conn.write = countedWrite as GuardedConn['write']
  conn.on('drain', onDrain)
  onStreamClose(conn, onClose)
}

function countedWrite(this: GuardedConn, chunk: { length: number }, ...rest: unknown[]): boolean {
  const g = this[GUARD]
  const ok = g.write.call(this, chunk, ...rest)
  g.wrote(chunk.length, ok)
  return ok
}
function onDrain(this: GuardedConn): void {
  this[GUARD].drained()
}
function onClose(conn: GuardedConn): void {
  conn[GUARD].closed()
}
