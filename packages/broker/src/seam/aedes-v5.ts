/**
 * The seam to what aedes 2.0.0-beta.1 does for MQTT 5 clients and does not let an application
 * configure (docs/internals.md rows V*, contract tests in test/seam/contract-v5.test.ts). Each
 * function names the code of the beta it works around and the upstream issue. By concern:
 * - aedes-v5.ts (this file): the v5 Client's fields read (V4, V5, V7), subscriptions written
 *   (V9), the Topic Alias map (V8), the parser's property sections (M13)
 * - aedes-v5-packets.ts: CONNACK, SUBACK and UNSUBACK amended, `$share/` filters accepted (V1-V3)
 * - aedes-v5-disconnect.ts: the server's DISCONNECT during the queue replay and on a takeover
 *   from another node (V6, V10)
 * - aedes-v5-fields.ts: what they share (the Client's fields, the 'mqtt5' stage's installer)
 */
import type { Aedes, Client } from 'aedes'
import { parserOf } from './aedes-client.js'
import { interceptPacketsOfEachClient } from './client-hooks.js'
import { strictParseProperties } from './mqtt-parse-props.js'
import { onEachClientV5, v5, type V5Fields } from './aedes-v5-fields.js'

/** the protocol level of the connection (lib/client.js `version`, set at CONNECT) */
export function protocolVersion(client: Client): number | undefined {
  return v5(client).version ?? undefined
}

/**
 * V4 the Receive Maximum a v5 client stated in its CONNECT (lib/handlers/connect.js sets
 * `client.receiveMaximum`, 65535 when absent, and does not honour it on sends: aedes#829);
 * undefined for 3.1.1 clients and before CONNECT
 */
export function receiveMaximumOf(client: Client): number | undefined {
  const c = v5(client)
  return c.version === 5 ? c.receiveMaximum : undefined
}

/**
 * V5 the Maximum Packet Size a v5 client stated in its CONNECT (lib/handlers/connect.js sets
 * `client.maximumPacketSize` and does not honour it on sends: aedes#1125); undefined when it
 * stated none, for 3.1.1 clients and before CONNECT
 */
export function maximumPacketSizeOf(client: Client): number | undefined {
  const c = v5(client)
  return c.version === 5 ? c.maximumPacketSize : undefined
}

/** a subscription of a v5 client, as lib/handlers/subscribe.js keeps it */
export interface V5Subscription {
  /** its Subscription Identifier, undefined when its SUBSCRIBE had none */
  si?: number
  /** No Local */
  nl?: boolean
}
/**
 * V7 the client's subscriptions by filter with their Subscription Identifier and No Local
 * (lib/handlers/subscribe.js `new Subscription(qos, func, rh, rap, nl, si)` in
 * client.subscriptions); the beta echoes the identifier of the one subscription a message was
 * delivered through only (its "KNOWN LIMITATION [MQTT-3.3.4-4]", aedes#828). Read, never changed.
 */
export function v5SubscriptionsOf(client: Client): Readonly<Record<string, V5Subscription>> | undefined {
  const c = v5(client) as V5Fields & { subscriptions?: Record<string, V5Subscription> }
  return c.version === 5 ? c.subscriptions : undefined
}

/**
 * V9 `changed` is called whenever a client's subscriptions may have gained one:
 * lib/handlers/subscribe.js subscribeTopic writes `client.subscriptions[filter]` (a new
 * Subscription, or a replaced one when its QoS, flags or identifier changed) and, synchronously
 * after it, calls `broker.subscribe(filter, func, done)`; a live SUBSCRIBE and a session restored
 * from the persistence at CONNECT (lib/handlers/connect.js restoreSubs, the stored identifiers
 * with it, also for a session another node held) both go that way. `changed` runs before the
 * call reaches the emitter, so before any message can be delivered through the new
 * subscription. Other callers of broker.subscribe call it too (harmless: it only says "may").
 * No upstream issue (nothing to fix upstream: a notification Aedes has no event for).
 */
export function onSubscriptionWritten(broker: Aedes, changed: () => void): void {
  type Sub = (topic: string, fn: unknown, done?: (err?: Error | null) => void) => void
  const b = broker as unknown as { subscribe: Sub }
  const subscribe = b.subscribe.bind(broker)
  b.subscribe = (topic, fn, done) => {
    changed()
    subscribe(topic, fn, done)
  }
}

/** the shared stand-in for a client's alias Map until it sends a Topic Alias: never written */
class NoTopicAliases extends Map<number, string> {
  override set(): this {
    throw new Error('culex: topic alias map of a client used before it was made (seam/aedes-v5.ts topicAliasesOnFirstUse)')
  }
}
const NO_TOPIC_ALIASES = new NoTopicAliases()

/**
 * V8 lib/client.js makes a Map of inbound Topic Aliases for every client in its constructor
 * (`_topicAliases`, read and written by lib/handlers/publish.js resolveTopicAlias only): ~184 B
 * per idle connection, 3.1.1 ones included (issue 15). Each client starts with one shared empty
 * stand-in instead, and gets its own Map when a PUBLISH with a Topic Alias leaves its parser,
 * before Aedes handles (or queues) it. No upstream issue found (upstream could make it on first use).
 */
export function topicAliasesOnFirstUse(broker: Aedes): void {
  onEachClientV5(broker, (client) => {
    ;(client as unknown as { _topicAliases: Map<number, string> })._topicAliases = NO_TOPIC_ALIASES
  })
  interceptPacketsOfEachClient<{ cmd: string; properties?: { topicAlias?: number } }>(broker, 'mqtt5', (packet, client) => {
    if (packet.cmd !== 'publish' || packet.properties?.topicAlias === undefined) return undefined
    const c = client as unknown as { _topicAliases: Map<number, string> }
    if (c._topicAliases === NO_TOPIC_ALIASES) c._topicAliases = new Map()
    return undefined
  }, ['publish'])
}

/**
 * M13 each connection's parser reads MQTT 5 property sections with strictParseProperties
 * (seam/mqtt-parse-props.ts) instead of mqtt-packet's `_parseProperties`: a property that comes
 * twice is seen whatever its first value, a User Property that is not UTF-8 is a malformed
 * packet. A shared function set as a property of the parser (as seam/mqtt-parser.ts hookParser
 * sets its own): no closure per connection.
 */
export function strictPropertySections(broker: Aedes): void {
  onEachClientV5(broker, (client) => {
    ;(parserOf(client) as unknown as { _parseProperties: unknown })._parseProperties = strictParseProperties
  })
}
