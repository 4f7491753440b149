/**
 * Builds the Aedes instance from the config: limits, the state backend and
 * the hooks every other concern plugs into.
 */
import type { Writable } from 'node:stream'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import { flushWrites } from '../listeners/write-batching.js'
import type { CulexConfig } from '../config/schema.js'
import type { Backend } from '../cluster/backend.js'
import type { HotCounters } from '../ops/metrics.js'
import { createPublishGate, type PublishGate } from './backpressure.js'
import { cacheTopicMatches, checkQoS2OncePerPacketId, gateEmits, protocolVersion, publishClientNoticesWhenHeard, replayQueueOfResumedV5Sessions, restoreAedes12Fixes, skipCleanSessionReplays, skipClosedRegistrations, memoryRetainedTree, RETAINED_HASH } from '../seam/index.js'
import { orderSessionReplay } from './session-order.js'
import { finishPublishesOnClose } from './finish-publishes.js'
import { markRedeliveries } from './redelivery.js'
import { pubackAfterPublish } from './puback-after-publish.js'
import { installConformance } from './conformance.js'
import { installMqtt5, responseInformationFor } from './mqtt5.js'
import { installTopicAliasesOut } from './topic-alias-out.js'
import type { Logger } from '../log.js'
import { installExactDedupe, seedCounter, seenBefore } from '../cluster/dedupe.js'
import { isolateHooks, type ClientFaults } from '../limits/client-faults.js'
import { tooLargeFor, type OutgoingPublish } from '../limits/client-packet-size.js'
import { withAllSubscriptionIds } from './subscription-ids.js'
import { SubscriberIndex } from './no-subscribers.js'
import { v5Published } from './mqtt5-puback.js'

export interface BrokerParts {
  config: CulexConfig
  nodeId: string
  backend: Backend
  counters: HotCounters
  /** closes a client whose handling throws (limits/client-faults.ts) */
  faults: ClientFaults
  /** extra Aedes hooks (auth, ACL) from other concerns */
  hooks?: Partial<AedesOptions>
  log: Logger
}

/** topic aliases an MQTT 5 client may set per connection (a map of at most this many topics each) */
export const TOPIC_ALIAS_MAXIMUM = 32

function flushConnack(client: Client): void {
  flushWrites(client.conn as unknown as Writable)
}

export async function createBroker({ config, nodeId, backend, counters, faults, hooks = {}, log }: BrokerParts): Promise<{ broker: Aedes; subscribers: SubscriberIndex | undefined; retainedCount: () => number | Promise<number> }> {
  const forward = hooks.authorizeForward
  // PUBACK once the message is safe (puback-after-publish.ts)
  const puback = pubackAfterPublish(backend.expectPublish)
  const opts: AedesOptions = {
    id: nodeId,
    mq: backend.mq,
    persistence: backend.persistence,
    heartbeatInterval: config.heartbeat_interval_ms,
    connectTimeout: config.connect_timeout_ms,
    // keepalive_max_s: an MQTT 5 client asking for more (or 0) gets it as Server Keep Alive in its
    // CONNACK [MQTT-3.2.2-22]; a 3.1.1 client is capped by conformance.ts before Aedes sees its
    // CONNECT (Aedes' keepaliveLimit refuses a 3.1.1 client with CONNACK 6)
    keepaliveLimit: config.keepalive_max_s,
    // MQTT 5 CONNACK Receive Maximum: the inbound window (max_inflight, seam/aedes-fixes.ts U2)
    receiveMaximum: Math.min(config.max_inflight, 65535),
    // MQTT 5 topic aliases from the client, per connection (0, Aedes' default, refused them all):
    // the CONNACK's Topic Alias Maximum [MQTT-3.3.2-12]
    topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
    maxClientsIdLength: config.max_client_id_length,
    queueLimit: config.queue_limit,
    // MQTT 5 Session Expiry Interval cap, echoed in the CONNACK when applied (0 = none for Aedes)
    sessionExpiryIntervalLimit: config.session_expiry_max_s >= 0xffffffff ? 0 : config.session_expiry_max_s,
    // MQTT 5 CONNACK Response Information, for a client that asks (mqtt5.ts)
    responseInformation: responseInformationFor(config.response_information),
    ...hooks,
    // counting is one integer increment per message, no allocation
    published(packet, client, done) {
      if (!client) return done()
      counters.messagesReceived++
      // MQTT 5: a QoS 1/2 message that matched no subscription anywhere gets 0x10 (broker/no-subscribers.ts)
      if (subscribers && packet.qos > 0 && protocolVersion(client) === 5) {
        const code = subscribers.reasonFor(packet.topic)
        // known at once (a subscriber in memory, nearly always): no closure per message
        if (typeof code === 'number') return v5Published(puback, client, packet, code, done)
        void code.then((c) => v5Published(puback, client, packet, c, done))
        return
      }
      // the message is delivered, in Redis and queued: now its PUBACK may go
      puback.completed(client, packet)
      done()
    },
    authorizeForward(client, packet) {
      // exact duplicate filter instead of Aedes' monotonic one (aedes#955, cluster/dedupe.ts)
      if (seenBefore(client, packet)) return null
      const out = forward ? forward(client, packet) : packet
      if (!out) return out
      // the identifiers of every matching subscription of a v5 client [MQTT-3.3.4-4] (broker/subscription-ids.ts)
      withAllSubscriptionIds(client, out)
      // never larger than a v5 client's Maximum Packet Size [MQTT-3.1.2-24] [MQTT-3.1.2-25] (limits/client-packet-size.ts)
      if (tooLargeFor(client, out as OutgoingPublish)) {
        counters.dropped.too_large_for_client++
        return null
      }
      counters.messagesDelivered++
      return out
    },
  }
  // a hook that throws closes its client, not the process (limits/client-faults.ts)
  const broker = await Aedes.createBroker(isolateHooks(opts, faults))
  // the subscriptions that exist, for 0x10 (no-subscribers.ts); before any client connects
  const subscribers = config.puback_no_subscribers ? new SubscriberIndex(broker, backend.mode === 'cluster') : undefined
  // a cluster node replays no clean session's (empty) queue through a pipeline (seam P13); before A20
  if (backend.mode === 'cluster') skipCleanSessionReplays(broker)
  // a client closed while its CONNECT waited for the store is not registered when it answers (seam A29)
  skipClosedRegistrations(broker)
  // a v5 session resumed with Session Expiry 0 gets its queue, which the beta deletes (seam A20)
  replayQueueOfResumedV5Sessions(broker)
  // fixes aedes 1.2.0 has and the 2.0 beta lacks, first on each client (seam/aedes-fixes.ts)
  restoreAedes12Fixes(broker, {
    maxInflightInbound: config.max_inflight,
    // U4: e.g. a repeated PUBREL's second delete ("no such packet"); debug, it is a client's doing
    onSettledError: (err, call) => log.debug({ call, err: err.message }, 'persistence call failed, ignored as aedes 1.2 did'),
  })
  // a publisher is not read while the node's delivery buffer is full (backpressure.ts): every message
  // Aedes publishes passes the gate on its way to the emitter (local subscribers, other nodes)
  let gate!: PublishGate
  gateEmits(broker, (emit) => {
    gate = createPublishGate(counters, emit, config.delivery_buffer_bytes, config.delivery_buffer_messages)
    return (message, cb) => gate.emit(message, cb)
  })
  // the emitter's topic matches kept per topic until the subscriptions change (seam E3)
  cacheTopicMatches(broker)
  // an inbound QoS 2 PUBLISH and its copy with the same packet id (one read, or a quick resend after
  // a reconnect) published once [MQTT-4.3.3-2] [MQTT-4.3.3-3] (seam A25)
  checkQoS2OncePerPacketId(broker)
  installExactDedupe(broker)
  seedCounter(broker)
  orderSessionReplay(broker)
  // DUP on redeliveries (cluster mode: cluster/outgoing.ts)
  if (backend.mode === 'memory') markRedeliveries(broker)
  puback.attach(broker)
  // MQTT 3.1.1 statements Aedes gets wrong (conformance.ts, docs/conformance.md)
  installConformance(broker, { keepaliveMaxS: config.keepalive_max_s, log, redis: backend.links?.data })
  // what v5 clients are told and granted where the beta's answer is not Culex's (mqtt5.ts)
  installMqtt5(broker, { maxPacketSize: config.max_packet_size })
  // opt-in: Topic Aliases on what v5 clients are sent (topic-alias-out.ts)
  installTopicAliasesOut(broker, config.topic_alias_out_max)
  // $SYS/<id>/new/clients and disconnect/clients only when a subscriber hears them; in a cluster
  // new/clients always (the other nodes take client ids over through it) and disconnect/clients
  // also when a subscriber on another node may hear it; after installMqtt5, whose takeover
  // listener counts as Aedes' own (seam/aedes-sys-clients.ts)
  if (backend.mode === 'memory') publishClientNoticesWhenHeard(broker)
  else publishClientNoticesWhenHeard(broker, (topic) => subscribers?.heardElsewhere(topic) ?? true)
  // the CONNACK leaves as soon as Aedes has finished the connect, not at the end of the loop turn
  // (listeners/write-batching.ts)
  broker.on('clientReady', flushConnack)
  broker.on('closed', () => gate.releaseAll())
  // a stopping node emits the publishes it started before its emitter closes (finish-publishes.ts)
  finishPublishesOnClose(broker, log)
  // one node: retained messages in a tree of topic levels, so a SUBSCRIBE reads only the branches
  // its filters name (seam P17), counted by its size (P14); a cluster: Redis' hash, its length
  const db = backend.links?.data
  const tree = db ? undefined : memoryRetainedTree(broker)!
  const retainedCount = db ? (): Promise<number> => db.hlen(RETAINED_HASH) : (): number => tree!.size
  return { broker, subscribers, retainedCount }
}
