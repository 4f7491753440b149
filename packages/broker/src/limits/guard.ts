/**
 * Per-connection guards Aedes (1.2 and 2.0.0-beta.1) does not have, installed on each Client as
 * Aedes creates it (broker.handle is wrapped, so TCP, WebSocket and TLS
 * listeners all get them):
 *
 * - max packet size: mqtt-packet's parser buffers a whole packet before
 *   parsing it and accepts any remaining length up to 256 MiB, so one header
 *   could make the node hold 256 MiB per connection. The remaining length is
 *   checked as soon as it is decoded and a larger packet closes the
 *   connection before its body is buffered.
 * - well-formed UTF-8 [MQTT-1.5.3-1] and no U+0000 [MQTT-1.5.3-2] in every
 *   string field (topics, client id, username): mqtt-packet decodes invalid
 *   bytes to U+FFFD silently. Only strings that contain U+FFFD or U+0000 after
 *   decoding are re-checked byte by byte, so the common path costs one scan.
 * - slow consumers and the byte accounting of what waits for each client:
 *   limits/delivery.ts; reads in small chunks: broker/backpressure.ts.
 * - packet fields: every packet leaving the parser is checked
 *   (limits/packet-check.ts) before Aedes handles it; a malformed one closes
 *   the connection [MQTT-4.8.0-1] and counts in
 *   culex_client_errors_total{reason="malformed_packet"}.
 * - a per-connection quota of PUBLISH packets (`max_publishes_per_s`): limits/publish-quota.ts.
 * - containment: the parser, the handling of packets queued before CONNACK
 *   and each delivery run inside a try/catch that closes only that client
 *   (limits/client-faults.ts).
 *
 * The parser patches (max packet size, UTF-8, the check of each packet, the
 * try/catch around parse) are in seam/mqtt-parser.ts, set once per broker
 * (seam/client-hooks.ts); the delivery guard runs as the installer 'limits',
 * the last one (seam/aedes-install.ts CLIENT_INSTALL_ORDER), so it is outermost.
 */
import type { Aedes, Client } from 'aedes'
import { boundReads } from '../broker/backpressure.js'
import { guardDeliveries, guardDelivery, type DeliveryOptions } from './delivery.js'
import { packetViolation } from './packet-check.js'
import { limitPublishRate } from './publish-quota.js'
import { installOnEachClient, lightenIdleConnections, onParserErrorOfEachClient, parserHooksOf, wrapQueuedPacketHandlingOfEachClient } from '../seam/index.js'

export interface GuardOptions extends DeliveryOptions {
  maxPacketSize: number
  /** max_publishes_per_s (limits/publish-quota.ts; 0 = none) */
  publishesPerSecond: number
}

/** the parser of every client (seam/client-hooks.ts: set once per broker, no closure per client) */
function guardParsers(broker: Aedes, opts: GuardOptions): void {
  const parser = parserHooksOf(broker)
  parser.maxPacketSize = opts.maxPacketSize
  parser.strictUtf8 = true
  // [MQTT-4.8.0-1] a packet that fails a check closes the connection; it is never emitted
  parser.check = packetViolation
  // bytes -> packets -> Aedes' handlers run synchronously inside parse (lib/client.js nextBatch, enqueue)
  parser.parseFault = (err, client) => opts.faults.fault(client, err, 'packet handling')
  const malformed = new WeakSet<Client>()
  onParserErrorOfEachClient(broker, 'limits', (_err, client) => {
    if (malformed.has(client)) return
    malformed.add(client)
    opts.counters.clientErrors.malformed_packet++
  })
}

/** every new connection gets the guards (TCP, WebSocket and TLS listeners all call broker.handle) */
export function guardBroker(broker: Aedes, opts: GuardOptions): void {
  guardParsers(broker, opts)
  guardDeliveries(broker)
  // max_publishes_per_s: PUBACK/PUBREC 0x97 for v5, the connection closed for 3.1.1 (publish-quota.ts)
  limitPublishRate(broker, opts.publishesPerSecond, opts.counters)
  // packets that arrived before CONNACK are handled by Aedes' 'connected' listener (lib/client.js dequeue)
  wrapQueuedPacketHandlingOfEachClient(broker, 'limits', (client, listener) => opts.faults.guard(client, 'queued packet handling', listener, undefined))
  installOnEachClient(broker, 'limits', (client) => {
    guardDelivery(client, opts)
    boundReads(client)
  })
  // what a connection holds while idle (issue 15): after these, as the last installer
  lightenIdleConnections(broker)
}
