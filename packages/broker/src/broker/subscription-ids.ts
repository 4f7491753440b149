/**
 * Subscription Identifiers of overlapping subscriptions [MQTT-3.3.4-3] [MQTT-3.3.4-4]
 * [MQTT-3.3.4-5] (v5): a message matching several of a v5 client's subscriptions is delivered
 * once (cluster/dedupe.ts) and must carry the identifiers of all of them, in any order. The beta
 * echoes the identifier of the subscription it went through only (aedes#828); here, in the
 * broker's authorizeForward (broker/create.ts), after the duplicate filter, on the subscriber's
 * node, the delivery gets the identifiers of every subscription of the client matching its topic
 * (seam V7 `v5SubscriptionsOf`). Subscriptions with No Local do not count for the client's own
 * messages [MQTT-3.8.3-3].
 * Left as the beta sends them: retained messages sent for a new subscription (no broker id:
 * that subscription's identifier only, as §3.3.4 says). `$share/` deliveries (broker id
 * `$share|…`) carry the identifier of the member's `$share/<group>/<filter>` subscription only,
 * added where the group's message is handed to it (shared/share-aedes.ts).
 * Cost: only for v5 clients holding an identifier; one topic match per filter of the client.
 * A v5 client found to hold none (no subscription but `$share/` ones with an identifier) is
 * remembered as such until any subscription is written on the node (seam V9: a SUBSCRIBE, a
 * session restored at CONNECT from the persistence, also one another node held): until then its
 * deliveries cost one WeakMap lookup, not a walk of its filters (issue 11).
 */
import type { Aedes, Client } from 'aedes'
import { onSubscriptionWritten, v5SubscriptionsOf } from '../seam/index.js'
import { DELIVERY_PREFIX } from '../shared/packets.js'
import { topicMatches } from './topic-filter.js'

interface Delivery {
  topic: string
  brokerId?: string | null
  clientId?: string | null
  properties?: Record<string, unknown>
}

/**
 * bumped whenever a subscription is written on a broker of this process (seam V9); shared by the
 * brokers of one process (tests run several): one's SUBSCRIBE makes the others walk once more
 */
let generation = 0
/** v5 clients that held no identifier at `generation` (their deliveries get none) */
const withoutIds = new WeakMap<Client, number>()

/** from now on, a client's cached "no identifiers" is forgotten when any subscription is written */
export function trackSubscriptionIds(broker: Aedes): void {
  onSubscriptionWritten(broker, () => {
    generation++
  })
}

/** `packet` with the Subscription Identifiers of all the client's subscriptions matching its topic */
export function withAllSubscriptionIds<P>(client: Client, packet: P): P {
  const p = packet as unknown as Delivery
  if (!p.brokerId || p.brokerId.startsWith(DELIVERY_PREFIX)) return packet
  const subs = v5SubscriptionsOf(client)
  if (!subs || withoutIds.get(client) === generation) return packet
  let ids: number[] | undefined
  let any = false
  for (const filter in subs) {
    const s = subs[filter]!
    if (s.si === undefined || filter.startsWith('$share/')) continue
    any = true
    if (s.nl && p.clientId === client.id) continue
    if (!topicMatches(filter, p.topic)) continue
    ;(ids ??= []).push(s.si)
  }
  if (!any) withoutIds.set(client, generation)
  if (!ids) return packet
  // one identifier, the one Aedes already set for the subscription it delivered through: as it is
  if (ids.length === 1 && p.properties?.subscriptionIdentifier === ids[0]) return packet
  // a new object: the properties may be shared with other deliveries of the message
  p.properties = { ...p.properties, subscriptionIdentifier: ids.length === 1 ? ids[0] : ids }
  return packet
}
