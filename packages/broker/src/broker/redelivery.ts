/**
 * Redelivery of a persistent session's queue on reconnect, single node (Aedes' in-memory
 * persistence; cluster mode does the same in cluster/outgoing.ts).
 *
 * Aedes replays the queue (lib/handlers/connect.js emptyQueue) with the packets as they were
 * queued: a message sent before and not acknowledged goes out again with its packet id
 * [MQTT-4.4.0-1] but DUP 0, and a message published with RETAIN 1 keeps it. Here a queued
 * PUBLISH that carries a packet id (aedes-persistence sets it when the message is sent) goes
 * out with DUP 1 [MQTT-3.3.1-1], and every queued PUBLISH with RETAIN 0: it matches an
 * established subscription [MQTT-3.3.1-9]. PUBRELs are untouched (their flags are fixed,
 * [MQTT-3.6.1-1]) and each keeps its own packet id (seam/memory-pubrel.ts); a new message never
 * takes the id of one in flight (seam/memory-packet-ids.ts). Cost: one object copy per replayed
 * message, and per PUBREC of a persistent session; a few Map operations per stored delivery and ack.
 */
import type { Aedes } from 'aedes'
import { keepStoredPubrelsApart, mapSessionReplay, skipEmptyConnectCleanups, skipEmptyQueueReplays, skipOfflineMatchWithoutSessions, skipPacketIdsInFlight } from '../seam/index.js'

interface Queued {
  cmd?: string
  messageId?: number
  dup?: boolean
  retain?: boolean
}

export function markRedeliveries(broker: Aedes): void {
  // the other memory-persistence hook of one node, here because create.ts calls this one in memory
  // mode only: no offline-queue topic match per QoS 1/2 message while no session keeps a QoS 1/2
  // subscription (seam/memory-offline.ts, issue 15)
  skipOfflineMatchWithoutSessions(broker)
  // each QoS 2 message past PUBREC keeps its own stored PUBREL, resent with its own packet id
  // [MQTT-4.4.0-1] (seam/memory-pubrel.ts: the memory store took a PUBREL for the first stored one)
  keepStoredPubrelsApart(broker)
  // a new PUBLISH of a persistent session never takes a packet id still in flight in its queue, once
  // the counter comes round or a reconnect's random start lands below one [MQTT-2.3.1-2]
  // [MQTT-2.2.1-4] (seam/memory-packet-ids.ts: the store took its PUBACK for the older message)
  skipPacketIdsInFlight(broker)
  // the stored packets are copied, not changed
  mapSessionReplay<Queued>(broker, (p) => (p.cmd !== 'publish' ? p : { ...p, dup: p.messageId !== undefined, retain: false }))
  // no replay pipeline per CONNECT while no session queue ever held a message (seam/memory-empty-queue.ts,
  // issue 15); after the other outgoingStream wrappers (this one and create.ts' A20), as it skips them
  skipEmptyQueueReplays(broker)
  // the store calls of every CONNECT and close (cleanSubscriptions, delWill, U3's cleanIncoming) made
  // only once the store held something of their kind (seam/memory-connect.ts, issue 15); after P7's
  // cleanSubscriptions wrapper and U4's delWill one (create.ts restoreAedes12Fixes runs before this)
  skipEmptyConnectCleanups(broker)
}
