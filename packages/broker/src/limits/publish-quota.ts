/**
 * `max_publishes_per_s`: a per-connection quota of PUBLISH packets (a token bucket: that many per
 * second, bursts of twice as many; 0 = no quota, nothing installed). A PUBLISH over it is refused,
 * neither delivered nor retained, as EMQX refuses a message over its per-connection routing quota:
 *
 * - MQTT 5, QoS 1/2: PUBACK / PUBREC 0x97 Quota exceeded (§3.4.2.1, §3.5.2.1: "an implementation or
 *   administrative imposed limit has been exceeded"), the connection stays; the packet id is free
 *   again at once [MQTT-4.3.3-9]. QoS 0: dropped, the connection stays (no ack to say so).
 * - MQTT 3.1.1: its PUBACK cannot refuse (a positive one would hide the loss), so the connection is
 *   closed, as for a PUBLISH the ACL denies [MQTT-3.3.5-2].
 *
 * Counted in culex_publish_quota_exceeded_total. A QoS 2 PUBLISH sent again (DUP 1) takes no token
 * and is never refused: the first copy may have been accepted, and a refusal of the copy would
 * tell the client otherwise. The refusal goes through Aedes' public authorizePublish hook (read at
 * call time, lib/handlers/publish.js; wills are asked too, and never refused here): the bucket is
 * charged as the packet leaves the parser (seam/client-hooks.ts), before Aedes handles it, and the
 * hook refuses the packets marked then; the v5 ack's code is set by broker/mqtt5-puback.ts.
 * Cost when on: one WeakMap lookup and a few operations per PUBLISH.
 */
import type { Aedes, Client } from 'aedes'
import { interceptPacketsOfEachClient, protocolVersion } from '../seam/index.js'
import { QUOTA_EXCEEDED, refuseWith } from '../broker/mqtt5-puback.js'
import type { HotCounters } from '../ops/metrics.js'
import { takeToken, type TokenBucket } from './rate.js'

interface InPublish {
  cmd: string
  qos?: number
  dup?: boolean
  messageId?: number
}

export function limitPublishRate(broker: Aedes, perSecond: number, counters: HotCounters): void {
  if (perSecond <= 0) return
  const burst = 2 * perSecond
  const buckets = new WeakMap<Client, TokenBucket>()
  /** PUBLISH packets over the quota, until the hook below refuses them */
  const over = new WeakSet<object>()
  interceptPacketsOfEachClient<InPublish>(broker, 'limits', (packet, client) => {
    if (packet.cmd !== 'publish' || (packet.qos === 2 && packet.dup === true)) return undefined
    const now = performance.now()
    let b = buckets.get(client)
    if (!b) buckets.set(client, (b = { tokens: burst, at: now }))
    if (!takeToken(b, now, perSecond, burst)) over.add(packet)
    return undefined
  }, ['publish'])
  const authorize = broker.authorizePublish.bind(broker)
  broker.authorizePublish = (client, packet, callback) => {
    if (!client || !over.has(packet)) return authorize(client, packet, callback)
    over.delete(packet)
    counters.publishOverQuota++
    if (protocolVersion(client) === 5) refuseWith(client, packet as unknown as InPublish, QUOTA_EXCEEDED)
    return callback(new Error(`quota exceeded: more than ${perSecond} PUBLISH packets per second`))
  }
}
