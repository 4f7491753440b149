/**
 * MQTT 5 at the node (issue 11 step 2): what Culex tells v5 clients in the CONNACK and grants
 * them, where aedes 2.0.0-beta.1's answer is not Culex's (the reaches are in seam/aedes-v5.ts).
 *
 * CONNACK properties (MQTT 5.0 §3.2.2.3):
 * - Shared Subscription Available 1: Culex has `$share/` across the cluster (src/shared/); the
 *   beta says 0 and refuses the filters with 0x9E, so they are let through to its hook.
 * - Maximum Packet Size `max_packet_size` (§3.2.2.3.6): Culex closes a connection whose packet's
 *   remaining length is larger (limits/guard.ts); the advertised total size is that number, so a
 *   client that keeps to it is never closed for size.
 * - Receive Maximum `max_inflight` (Aedes' receiveMaximum option, broker/create.ts) and Server
 *   Keep Alive `keepalive_max_s` (Aedes' keepaliveLimit, which for v5 answers with the cap
 *   instead of refusing [MQTT-3.2.2-21]; 3.1.1 CONNECTs are capped before Aedes sees them,
 *   broker/conformance.ts).
 * - Retain, Wildcard Subscription, Subscription Identifier Available and Maximum QoS are absent,
 *   i.e. available / 2: Culex has them all.
 * SUBACK: a refused filter is 0x87 Not authorized for v5 clients (the beta writes 0x80 when its
 * version check was bypassed for a `$share/` filter of the same SUBSCRIBE).
 */
import type { Aedes } from 'aedes'
import { acceptV5SharedFilters, amendConnack, amendSuback, installOnEachClient } from '../seam/index.js'

export interface Mqtt5Options {
  /** max_packet_size (remaining length, bytes) */
  maxPacketSize: number
}

const UNSPECIFIED_ERROR = 0x80
const NOT_AUTHORIZED = 0x87

export function installMqtt5(broker: Aedes, opts: Mqtt5Options): void {
  installOnEachClient(broker, 'mqtt5', (client) => {
    amendConnack(client, (properties) => {
      properties.sharedSubscriptionAvailable = true
      properties.maximumPacketSize = opts.maxPacketSize
    })
    acceptV5SharedFilters(client)
    amendSuback(client, (suback) => {
      if (suback.granted) suback.granted = suback.granted.map((g) => (g === UNSPECIFIED_ERROR ? NOT_AUTHORIZED : g))
    })
  })
}
