/**
 * The seam: the only modules that touch internals of Culex's dependencies (issue 11). Each
 * internal is listed in docs/internals.md with where it is used and why, and checked by
 * test/seam/contract.test.ts, which fails naming it when an upgrade removes or changes it.
 *
 * - aedes-install.ts: broker.handle wrapped once, with the per-client installers run in
 *   CLIENT_INSTALL_ORDER
 * - aedes-client.ts: the Client's undocumented fields
 * - aedes-broker.ts: the broker instance's undocumented fields
 * - client-hooks.ts: the parser and write hooks of every connection, registered once per broker
 * - aedes-deliver.ts: Aedes' per-client deliveries, copied to write in the turn they are delivered
 * - aedes-fixes.ts: fixes aedes 1.2.0 has and 2.0.0-beta.1 lacks, put back from outside
 * - aedes-v5.ts, aedes-v5-packets.ts, aedes-v5-disconnect.ts (aedes-v5-fields.ts shared): what the
 *   beta does for MQTT 5 clients without an option (CONNACK, SUBACK, $share, DISCONNECT)
 * - mqtt-packet-debug.ts: mqtt-packet's debug loggers off, before it loads (it loads there)
 * - mqtt-parser.ts: the parser's underscore methods
 * - mqtt-read-buffer.ts: the parser's read buffer (`_list`) as offsets into the read Buffer
 * - mqtt-writes.ts: the process-wide writeToStream
 * - persistence.ts: aedes-persistence(-redis) and qlobber deep imports, the Redis key layout
 * - memory-offline.ts: one node, no offline-queue topic match while no session keeps a QoS 1/2 subscription
 * - memory-retained.ts: one node's retained messages in a tree of topic levels (P17), counted without reading them (P14)
 * - memory-empty-queue.ts: one node, no replay pipeline per CONNECT while no session queue ever held a message
 * - memory-connect.ts: one node, no store call per CONNECT and close while the store never held anything of its kind
 * - memory-pubrel.ts: one node, a session's stored PUBRELs kept apart (one per QoS 2 message past PUBREC)
 * - memory-packet-ids.ts: one node, a persistent session's new PUBLISH never takes a packet id still in flight
 * - aedes-sys-clients.ts: the $SYS new/disconnect client notices, left out on one node while unheard
 * - aedes-new-clients.ts: Aedes' listener on $SYS/+/new/clients (closeSameClients), wrapped by V6 and A22
 * - aedes-sessions.ts: the MQTT 5 session-expiry and will-delay timers, replaced in a cluster; a
 *   connection's close held for its session-end mark; other nodes' takeover notices checked
 * - aedes-replay.ts: the replay of a session's queue at CONNECT, paced (the client's Receive Maximum)
 * - aedes-replay-expiry.ts: entries of that replay sent before go out again past their Message Expiry
 * - mqemitter.ts: the matcher and `closed`
 * - ioredis.ts: the socket of a connection
 * - idle-connection.ts: what the Client and its parser make per connection and an idle one does not use
 * - client-close.ts: no end-of-stream watch made for a TCP Client, its close's Error without a stack trace
 * - keepalive-sweep.ts: the clients' keepalive checked by one sweep per broker, not a timer each
 * - aedes-subscribers.ts: whether a client of this node subscribes to a topic, from Aedes' routing trie
 * - ws-close.ts: ws' answer to a client's close frame, held until the MQTT connection is closed
 * - aedes-qos2-incoming.ts: an inbound QoS 2 packet id checked and stored once at a time per session
 * - aedes-republish.ts: the id of each QoS 1/2 message as its publish starts; a message published
 *   again (a failover crossed its batch) without its `published` hook and 'publish' event
 */
export * from './aedes-install.js'
export * from './aedes-client.js'
export * from './aedes-broker.js'
export { restoreAedes12Fixes, type AedesFixesOptions } from './aedes-fixes.js'
export * from './aedes-v5.js'
export * from './aedes-v5-packets.js'
export * from './aedes-v5-disconnect.js'
export { publishClientNoticesWhenHeard } from './aedes-sys-clients.js'
export { wrapNewClientsListener, type NewClientsListener } from './aedes-new-clients.js'
export { closeConnectionAfter, closeSameClientsUnlessKept, onceConnectedOrClosed, replaceSessionTimers, replayQueueOfResumedV5Sessions, type SessionTimers } from './aedes-sessions.js'
export { onceReplayWaits, paceSessionReplay } from './aedes-replay.js'
export { keepSentMessagesPastExpiry } from './aedes-replay-expiry.js'
export { emitMessage, onEveryMessage, observeSubscriptions, wrapOutgoingAcks, keepInSession, brokerClosing, clientClosed, type OutgoingAcks } from './aedes-routing.js'
export { mqttPacketDebug } from './mqtt-packet-debug.js'
export * from './mqtt-parser.js'
export * from './mqtt-writes.js'
export * from './client-hooks.js'
export { deliverQoS0InTurn, deliverQoSInTurn, later, UNWATCHED } from './aedes-deliver.js'
export { ReadBuffer, readThroughBuffer, parsersWithReadBuffer } from './mqtt-read-buffer.js'
export * from './persistence.js'
export { Answered, skipOfflineMatchWithoutSessions, memoryPersistenceCore } from './memory-offline.js'
export { countRetainedTopics, memoryRetainedTree } from './memory-retained.js'
export { EMPTY_QUEUE, emptyReplays, skipCleanSessionReplays, skipEmptyQueueReplays } from './memory-empty-queue.js'
export { incomingNeverStored, skipEmptyConnectCleanups } from './memory-connect.js'
export { keepStoredPubrelsApart, PUBREL_ID } from './memory-pubrel.js'
export { skipPacketIdsInFlight } from './memory-packet-ids.js'
export * from './mqemitter.js'
export * from './ioredis.js'
export { closeClient, NO_WATCH, skipEndOfStreamWatch } from './client-close.js'
export { lightenIdleConnections, fastEvents, closeOnStreamClose, shareSocketListeners, shareParserListener, shareParserStates, forgetConnectPacket, packetOnlyWhileReading } from './idle-connection.js'
export { localSubscriberTest } from './aedes-subscribers.js'
export { checkQoS2OncePerPacketId } from './aedes-qos2-incoming.js'
export { watchQoSPublishes, messageKey, type MessageIds, type QoSPublishWatch, type Republish } from './aedes-republish.js'
export { sweepKeepalives, SWEEP_MS } from './keepalive-sweep.js'
export { answerCloseFrameOnStreamEnd, closeFrameUnanswered } from './ws-close.js'
