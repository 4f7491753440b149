/**
 * The QoS a message is delivered at is the lower of its own and the QoS granted to the matching
 * subscription [MQTT-3.8.4-6]; through overlapping subscriptions, the highest granted one
 * [MQTT-3.3.5-1].
 *
 * Aedes (1.2 and 2.0.0-beta.1) (lib/client.js deliverQoS) looks the granted QoS up by the message's topic name
 * (`client.subscriptions[packet.topic]`), which finds nothing for a wildcard filter: a QoS 2
 * message matching `a/#` granted QoS 1 went out at QoS 2, and so did a retained one. And when
 * a QoS 0 and a QoS 1 subscription overlap, the copy of the QoS 0 one can be delivered first and
 * the QoS 1 one is then dropped as a duplicate (cluster/dedupe.ts), so the client got the
 * message at QoS 0 only.
 *
 * Messages queued for an offline session were replayed at the QoS they were published with
 * (aedes-persistence stores the PUBLISH as it came).
 *
 * Here each Aedes client's `deliverQoS` caps the message at the highest QoS granted to the
 * client's filters that match its topic, and its `deliver0` leaves a QoS 1/2 message to a
 * matching subscription of higher QoS (that copy is then the one delivered, once). A queued
 * QoS 2 message granted QoS 1 is sent at QoS 1 as it is written (seam/mqtt-writes.ts onWrite); its
 * PUBACK clears it from the queue like a PUBCOMP would (Aedes clears by packet id).
 * (aedes#208 fixed the cap for a filter equal to the topic only.)
 * Cost per delivery: one lookup when a filter equal to the topic was granted the message's QoS or
 * more; else the topic matched against each of the client's filters (most clients have a few).
 */
import type { Aedes } from 'aedes'
import { grantedSubscriptions, onWriteOfEachClient, stepDeliveriesOfEachClient } from '../seam/index.js'
import { SHARE_PREFIX } from '../shared/names.js'
import { topicMatches } from './topic-filter.js'


/** highest QoS granted to the client's filters matching topic, -1 if none */
function granted(subs: Record<string, { qos: number }>, topic: string): number {
  // fast path: a filter equal to the topic granted QoS 2 is the highest there can be
  if (subs[topic]?.qos === 2) return 2
  let best = -1
  for (const filter in subs) {
    const qos = subs[filter]!.qos
    // a `$share/<group>/<filter>` subscription matches no topic as a filter (nobody may publish to
    // `$share/...`); its messages come through the group at the member's QoS (shared/delivery.ts)
    if (qos > best && !filter.startsWith(SHARE_PREFIX) && topicMatches(filter, topic)) best = qos
  }
  return best
}

export function installGrantedQos(broker: Aedes): void {
  // one step per broker for every client's deliveries (seam/client-hooks.ts)
  stepDeliveriesOfEachClient(broker, 'granted-qos', 'deliverQoS', (packet, _cb, client) => {
    if (packet.qos > 0) {
      const subs = grantedSubscriptions(client)
      // fast path: a filter equal to the topic granted at least the message's QoS, so the highest
      // granted is too: nothing to cap, no walk over the client's filters (issue 15)
      if ((subs[packet.topic]?.qos ?? -1) >= packet.qos) return false
      const g = granted(subs, packet.topic)
      if (g >= 0 && g < packet.qos) packet.qos = g
    }
    return false
  })
  stepDeliveriesOfEachClient(broker, 'granted-qos', 'deliver0', (packet, cb, client) => {
    if (packet.qos > 0 && granted(grantedSubscriptions(client), packet.topic) > 0) {
      setImmediate(cb)
      return true
    }
    return false
  })
  // session replay (lib/handlers/connect.js emptyQueue) writes queued packets directly
  onWriteOfEachClient(broker, 'granted-qos', (p, client) => {
    if (p.cmd === 'publish' && p.qos === 2 && granted(grantedSubscriptions(client), p.topic!) === 1) p.qos = 1
  }, ['publish'])
}
