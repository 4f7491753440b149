/**
 * The seam to what aedes 2.0.0-beta.1 does for MQTT 5 clients and does not let an application
 * configure (docs/internals.md rows V*, contract tests in test/seam/contract-v5.test.ts). Each
 * function names the code of the beta it works around and the upstream issue.
 */
import type { Aedes, Client } from 'aedes'
import { installOnEachClient } from './aedes-install.js'
import { parserOf, wrapQueuedPacketHandling } from './aedes-client.js'
import { aroundPacketsOfEachClient, interceptPacketsOfEachClient, onWriteOfEachClient } from './client-hooks.js'
import type { OutPacket } from './mqtt-writes.js'
import { strictParseProperties } from './mqtt-parse-props.js'
import { write as aedesWrite } from './aedes-deliver.js'

/** the Client fields of the beta these touch */
interface V5Fields {
  version?: number | null
  conn: NodeJS.WritableStream
  receiveMaximum?: number
  maximumPacketSize?: number
}
const v5 = (client: Client): V5Fields => client as unknown as V5Fields

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

/**
 * V1 `amend` may change the properties of the successful CONNACK of a v5 client before it is
 * written: lib/handlers/connect.js connackProperties builds them from a few broker fields and
 * hard-codes `sharedSubscriptionAvailable: false` (aedes#841: no shared subscriptions upstream);
 * there is no option for the rest (no upstream issue found). One write hook per broker (stage
 * 'mqtt5'): a 3.1.1 client costs nothing but the version check per packet written.
 */
export function amendConnack(broker: Aedes, amend: (properties: Record<string, unknown>) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd !== 'connack' || v5(client).version !== 5 || (p.reasonCode ?? 0) !== 0) return
    p.properties = { ...p.properties }
    amend(p.properties)
  })
}

/** V2 `amend` sees every SUBACK written to a v5 client (its reason codes, in the order of the filters) */
export function amendSuback(broker: Aedes, amend: (packet: OutPacket, client: Client) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd === 'suback' && v5(client).version === 5) amend(p, client)
  })
}

/** V2 `amend` sees every UNSUBACK written to a v5 client (its reason codes, in the order of the filters: `granted`) */
export function amendUnsuback(broker: Aedes, amend: (packet: OutPacket, client: Client) => void): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd === 'unsuback' && v5(client).version === 5) amend(p, client)
  })
}

const SHARE = '$share/'
interface QueuedSubscribe {
  cmd: string
  subscriptions?: Array<{ topic: string }>
}
const hasShareFilter = (packet: QueuedSubscribe): boolean => packet.cmd === 'subscribe' && !!packet.subscriptions?.some((s) => s.topic.startsWith(SHARE))

/** run `handle` with the Client's `version` reading 4 (V3) */
function asVersion4(c: V5Fields, handle: () => void): void {
  c.version = 4
  try {
    handle()
  } finally {
    c.version = 5
  }
}

/**
 * V3 lib/handlers/subscribe.js doSubscribe answers a v5 client's `$share/` filter with 0x9E
 * (Shared Subscriptions not supported) before the authorizeSubscribe hook sees it (aedes#841).
 * Culex has shared subscriptions (src/shared/, through that hook): while Aedes starts handling a
 * v5 SUBSCRIBE with a `$share/` filter, the Client's `version` reads 4, so that check passes.
 * The check runs synchronously in the handler; so does a refusal by an authorizeSubscribe hook
 * that calls back at once, which then writes the 3.1.1 code 0x80 (amendSuback can map it back).
 * A SUBSCRIBE the client sent before its CONNACK waits in the parser's `_queue` (lib/client.js
 * enqueue) until the Client's 'connected' listener (dequeue) handles the queue, synchronously,
 * one packet after the other: that listener is then given the queue one packet at a time
 * (`_queue` set to that packet; dequeue sets it to null after each), a `$share/` SUBSCRIBE with
 * `version` reading 4.
 */
export function acceptV5SharedFilters(broker: Aedes): void {
  aroundPacketsOfEachClient<QueuedSubscribe>(broker, 'mqtt5', {
    before(packet, client) {
      const c = v5(client)
      if (c.version !== 5 || !hasShareFilter(packet)) return false
      c.version = 4
      return true
    },
    after(_packet, client) {
      v5(client).version = 5
    },
  })
  onEachClientV5(broker, (client) => {
    const c = v5(client)
    const parser = parserOf(client) as unknown as { _queue: QueuedSubscribe[] | null }
    wrapQueuedPacketHandling(client, (dequeue) => (...args) => {
      const queue = parser._queue
      if (c.version !== 5 || !queue || !queue.some(hasShareFilter)) return dequeue(...args)
      for (const packet of queue) {
        parser._queue = [packet]
        if (hasShareFilter(packet)) asVersion4(c, () => dequeue(...args))
        else dequeue(...args)
      }
      parser._queue = null
    })
  })
}

/** the 'mqtt5' stage's per-client installers (one installOnEachClient per stage) */
const v5Installers = new WeakMap<Aedes, Array<(client: Client) => void>>()
function onEachClientV5(broker: Aedes, install: (client: Client) => void): void {
  let list = v5Installers.get(broker)
  if (!list) {
    const all: Array<(client: Client) => void> = (list = [])
    v5Installers.set(broker, all)
    installOnEachClient(broker, 'mqtt5', (client) => {
      for (let i = 0; i < all.length; i++) all[i]!(client)
    })
  }
  list.push(install)
}

type Done = (err?: Error | null) => void
type Listener = (packet: { topic: string; payload: Buffer }, done: Done) => void
interface TakeoverFields {
  id: string
  mq: {
    on(topic: string, fn: Listener, done?: () => void): unknown
    removeListener(topic: string, fn: Listener, done?: () => void): unknown
    _matcher: { match(topic: string): Listener[] }
  }
  clients: Record<string, Client & { closed?: boolean }>
}
const NEW_CLIENTS = '$SYS/+/new/clients'

/**
 * V6 a client id connecting on another node closes the connection of that id here: Aedes' own
 * listener on `$SYS/+/new/clients` (aedes.js `closeSameClients`, found by name in the emitter's
 * matcher, mqemitter `_matcher`) calls `client.close()`, so a v5 client learns nothing, where a
 * takeover on the same node sends DISCONNECT 0x8E (aedes.js registerClient). `takeover` is called
 * first for the client another node took: true = it handled the close (and calls `done`), false =
 * Aedes' own listener runs. No upstream issue found (upstream could use client.disconnect there).
 */
export function onRemoteTakeover(broker: unknown, takeover: (client: Client, done: Done) => boolean): void {
  const b = broker as TakeoverFields
  const own = b.mq._matcher.match('$SYS/x/new/clients').find((fn) => fn.name === 'closeSameClients')
  if (!own) throw new Error("aedes internals: no 'closeSameClients' listener on $SYS/+/new/clients")
  b.mq.removeListener(NEW_CLIENTS, own)
  b.mq.on(NEW_CLIENTS, function culexCloseSameClients(packet, done) {
    const serverId = packet.topic.split('/')[1]
    const client = b.clients[packet.payload.toString()]
    if (client && serverId !== b.id && !client.closed && takeover(client, done)) return
    own(packet, done)
  })
}

interface DisconnectOpts {
  reasonCode?: number
  properties?: Record<string, unknown>
}
type Disconnect = (opts?: DisconnectOpts | (() => void), done?: () => void) => void
/** the Client fields lib/client.js `disconnect` and lib/handlers/connect.js use */
interface DisconnectFields {
  version?: number | null
  connected?: boolean
  connecting?: boolean
  connackSent?: boolean
  closed?: boolean
  errored?: boolean
  disconnectReasonCode?: number
  disconnect: Disconnect
  close(done?: () => void): void
  emit(event: string, err: Error): boolean
}
/** a v5 client whose CONNACK was written and whose queue is still being replayed */
const replaying = (c: DisconnectFields): boolean => c.version === 5 && !c.connected && !!c.connackSent && !c.closed && !c.errored

/** the Client prototype's `disconnect` (lib/client.js), per prototype seen */
const aedesDisconnect = new WeakMap<object, Disconnect>()
/** lib/client.js `disconnect`, and for a v5 client in its replay what it does for a connected one */
function disconnectDuringReplay(this: DisconnectFields, opts?: DisconnectOpts | (() => void), done?: () => void): void {
  if (typeof opts === 'function') {
    done = opts
    opts = {}
  }
  if (!replaying(this)) return aedesDisconnect.get(Object.getPrototypeOf(this) as object)!.call(this, opts, done)
  const reasonCode = opts?.reasonCode ?? 0
  this.disconnectReasonCode = reasonCode
  const packet: { cmd: string; reasonCode: number; properties?: Record<string, unknown> } = { cmd: 'disconnect', reasonCode }
  if (opts?.properties) packet.properties = opts.properties
  // lib/write.js writes while `connecting` (true until the replay ends): after the packets already written, through the write hooks
  aedesWrite(this as unknown as Parameters<typeof aedesWrite>[0], packet, (err) => {
    if (err) this.emit('error', err)
    this.close(done)
  })
}

/**
 * V10 lib/client.js `disconnect` writes a DISCONNECT only for a `connected` client, which a client
 * becomes only once lib/handlers/connect.js has written its CONNACK (`connackSent`, set in
 * doConnack's write callback) and replayed its session's queue (emptyQueue): a v5 client taken
 * over in between (aedes.js registerClient, V6 from another node) or closed for a protocol error
 * was closed without DISCONNECT [MQTT-3.14.0-1]. Each v5 client's `disconnect` (an own property:
 * one shared function) writes it then too, as for a connected client (lib/write.js writes while
 * `connecting`), then closes; the messages of the queue not yet acknowledged stay in the
 * persistence for the next connection. No upstream issue found (upstream could test connackSent).
 */
export function disconnectDuringQueueReplay(broker: Aedes): void {
  onEachClientV5(broker, (client) => {
    const c = client as unknown as DisconnectFields
    const proto = Object.getPrototypeOf(c) as object
    if (!aedesDisconnect.has(proto)) aedesDisconnect.set(proto, (proto as DisconnectFields).disconnect)
    c.disconnect = disconnectDuringReplay
  })
}

/**
 * a server-sent DISCONNECT with `reasonCode` for a v5 client whose CONNACK was written
 * (client.disconnect, public in aedes 2, and V10 during its queue replay: written, then the
 * connection closed), or false for any other client
 */
export function disconnectV5(client: Client, reasonCode: number, done?: () => void): boolean {
  const c = client as unknown as DisconnectFields
  if (c.version !== 5 || c.closed || !(c.connected || replaying(c))) return false
  c.disconnect({ reasonCode }, done ?? (() => {}))
  return true
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
  })
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
