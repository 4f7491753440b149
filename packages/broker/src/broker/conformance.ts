/**
 * MQTT 3.1.1 statements Aedes (1.2 and 2.0.0-beta.1) and mqtt-packet get wrong, checked on each
 * connection before Aedes sees the packet (docs/conformance.md lists them all):
 *
 * - [MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01, then the
 *   connection is closed (mqtt-packet's parser rejects it first, so Aedes
 *   closed the socket with no CONNACK).
 * - [MQTT-3.1.3-8] a zero-length client id with Clean Session 0 gets CONNACK
 *   0x02, then the connection is closed (Aedes made up an id).
 * - [MQTT-3.1.2-22] [MQTT-3.1.4-1] password flag without user name flag, a
 *   will topic that is empty or holds a wildcard [MQTT-4.7.3-1] [MQTT-3.3.2-2]:
 *   closed without CONNACK (Aedes accepted them).
 * (Will QoS 3, CONNECT bytes the flags do not announce and UNSUBSCRIBE without
 * a filter are closed by limits/packet-check.ts.)
 * - [MQTT-4.7.1-2] [MQTT-4.7.1-3] a SUBSCRIBE or UNSUBSCRIBE with a filter
 *   whose wildcards do not fill a whole level (`a#`, `a+/b`; Aedes granted them): closed.
 * - [MQTT-3.3.1-3] an incoming PUBLISH's DUP flag is not passed on.
 * - [MQTT-3.1.2-1] a level 4 or 5 CONNECT named "MQIsdp" is closed (it was left hanging).
 * - MQTT 5 [MQTT-3.3.4-6]: a PUBLISH from the client holding a Subscription Identifier is
 *   closed (Aedes 2.0.0-beta.1 passed it on).
 * - [MQTT-3.8.4-6] [MQTT-3.3.5-1] the QoS of a delivery (conformance-qos.ts).
 * - [MQTT-4.7.2-1] no retained `$` topic for a filter that starts with a wildcard (conformance-retained.ts).
 * - [MQTT-4.8.0-1] an ack of the wrong kind (conformance-acks.ts): closed.
 * - keepalive_max_s: a 3.1.1 client asking for more, or for 0 (no keepalive), is
 *   accepted and held to the cap server-side (dropped after 1.5 x the cap of
 *   silence [MQTT-3.1.2-24]), as EMQX does with keepalive_max. Aedes refused
 *   it with CONNACK 6, a code MQTT 3.1.1 does not have.
 *
 * How: hooks registered once per broker (seam/client-hooks.ts, stage 'conformance') intercept what
 * each client's mqtt-packet parser emits (seam/mqtt-parser.ts): each parsed packet, and the error for the
 * protocol level (UTF-8 is checked in limits/guard.ts). A violation is re-emitted as the
 * parser's 'error', which Aedes turns into a closed connection.
 * Cost: a switch on the packet type per packet received.
 */
import type { Aedes, Client } from 'aedes'
import {
  connackSent,
  interceptPacketsOfEachClient,
  interceptParseErrorsOfEachClient,
  isUnsupportedProtocolLevel,
  parserOf,
  protocolVersion,
  stopParsing,
} from '../seam/index.js'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { trackAcks, type AckTracker } from './conformance-acks.js'
import { disconnecting, installSessionPresent } from './conformance-session.js'
import { installGrantedQos } from './conformance-qos.js'
import { installRetainedStreams } from './conformance-retained.js'

export interface ConformanceOptions {
  /** keepalive_max_s: 0 = no cap */
  keepaliveMaxS: number
  log: Logger
  /** cluster mode: where session marks live (conformance-session.ts) */
  redis?: Redis
}

interface InPacket {
  cmd: string
  protocolVersion?: number
  messageId?: number
  clientId?: string
  clean?: boolean
  keepalive?: number
  protocolId?: string
  properties?: { subscriptionIdentifier?: unknown; sessionExpiryInterval?: number }
  username?: string
  password?: Buffer
  will?: { qos?: number; topic?: string }
  dup?: boolean
  subscriptions?: unknown[]
  unsubscriptions?: unknown[]
}

/** CONNACK with a return code, Session Present 0 [MQTT-3.2.2-4] */
const connack = (code: number): Buffer => Buffer.from([0x20, 0x02, 0x00, code])

export function installConformance(broker: Aedes, opts: ConformanceOptions): void {
  installSessionPresent(broker, opts.redis, opts.log)
  installGrantedQos(broker)
  installRetainedStreams(broker, opts.log)
  const acks = trackAcks(broker)
  /** clients whose CONNECT was refused: nothing after it is processed */
  const refused = new WeakSet<Client>()
  /** CONNACK `code`, then close once it is written [MQTT-3.2.2-5] */
  const refuse = (client: Client, code: number, err: Error): void => {
    refused.add(client)
    stopParsing(parserOf(client), err)
    client.conn.end(connack(code), () => client.emit('error', err))
  }

  interceptParseErrorsOfEachClient(broker, 'conformance', (err, client) => {
    if (!refused.has(client) && isUnsupportedProtocolLevel(err) && !client.connecting && !client.connected && !connackSent(client)) {
      refuse(client, 0x01, new Error('[MQTT-3.1.2-2] unsupported protocol level'))
      return true
    }
    return false
  })

  interceptPacketsOfEachClient<InPacket>(broker, 'conformance', (packet, client) => {
    // nothing after a refused CONNECT is processed
    if (refused.has(client)) return false
    if (packet.cmd === 'connect' && packet.clean === false && packet.clientId === '') {
      refuse(client, 0x02, new Error('[MQTT-3.1.3-8] empty client id with clean session 0'))
      return false
    }
    // a session this DISCONNECT ends is marked as ending before Aedes closes the connection [MQTT-4.1.0-2]
    if (packet.cmd === 'disconnect') disconnecting(broker, client, packet)
    // MQTT 5: an invalid filter gets SUBACK 0x8F instead (broker/mqtt5.ts)
    if (packet.cmd === 'subscribe' && protocolVersion(client) === 5) return undefined
    return violation(packet, client, acks, opts)
  })
}

function violation(packet: InPacket, client: Client, acks: AckTracker, opts: ConformanceOptions): Error | undefined {
  switch (packet.cmd) {
    case 'connect':
      // [MQTT-3.1.2-1] (3.1.1 and 5): levels 4 and 5 are named "MQTT"; mqtt-packet lets "MQIsdp" (the
      // name of level 3) through at any level, and Aedes 2.0.0-beta.1 then neither answered nor closed
      if ((packet.protocolVersion ?? 0) >= 4 && packet.protocolId !== 'MQTT') return new Error('[MQTT-3.1.2-1] protocol name is not MQTT')
      if (packet.password !== undefined && packet.username === undefined) return new Error('[MQTT-3.1.2-22] password flag without user name flag')
      if (packet.will && !validTopicName(packet.will.topic)) return new Error('[MQTT-3.1.4-1] [MQTT-4.7.3-1] [MQTT-3.3.2-2] will topic empty or with a wildcard')
      capKeepalive(packet, opts)
      return undefined
    case 'publish':
      // [MQTT-3.3.1-3] the DUP flag of a delivery says only whether that delivery is a resend:
      // the incoming one is not passed on (Aedes copied it to every subscriber and offline queue)
      packet.dup = false
      // [MQTT-3.3.4-6] a Subscription Identifier is the server's to send, never the client's
      if (packet.properties?.subscriptionIdentifier !== undefined) return new Error('[MQTT-3.3.4-6] PUBLISH from the client with a Subscription Identifier')
      return undefined
    case 'subscribe':
      for (const sub of (packet.subscriptions ?? []) as Array<{ topic: string }>) if (!validFilter(sub.topic)) return new Error(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1] invalid topic filter ${JSON.stringify(sub.topic)}`)
      return undefined
    case 'unsubscribe':
      for (const topic of (packet.unsubscriptions ?? []) as string[]) if (!validFilter(topic)) return new Error(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1] invalid topic filter ${JSON.stringify(topic)}`)
      return undefined
    default:
      return acks.check(packet, client)
  }
}

/**
 * "#" only as a whole last level [MQTT-4.7.1-2], "+" only as a whole level [MQTT-4.7.1-3].
 * Aedes' validateTopic (lib/utils.js) misses some by an off-by-one: `a#`, `a+/b`, `a/+b`, `+a`
 * were granted (upstream-worthy). An empty filter [MQTT-4.7.3-1] is refused here too: Aedes closes
 * the connection for it, but a valid filter of the same SUBSCRIBE stores the whole packet's
 * filters in a persistent session (lib/handlers/subscribe.js storeSubscriptions), and every later
 * CONNECT of that client id then failed restoring the empty one (found by the fuzzer).
 */
export function validFilter(filter: string): boolean {
  if (filter.length === 0) return false
  if (filter.indexOf('#') === -1 && filter.indexOf('+') === -1) return true
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return false
    if (level.includes('+') && level !== '+') return false
  }
  return true
}

/** a topic name: at least one character [MQTT-4.7.3-1], no wildcard [MQTT-3.3.2-2] */
function validTopicName(topic: string | undefined): boolean {
  return !!topic && topic.indexOf('#') === -1 && topic.indexOf('+') === -1
}

/**
 * keepalive_max_s applied server-side instead of a CONNACK refusal; Aedes drops a client silent for
 * 1.5 x this. MQTT 5 clients are left to Aedes' keepaliveLimit (broker/create.ts), which tells them
 * the cap as Server Keep Alive in the CONNACK [MQTT-3.2.2-22]; rewritten here, they never learned it.
 */
function capKeepalive(packet: InPacket, opts: ConformanceOptions): void {
  const max = opts.keepaliveMaxS
  if (packet.protocolVersion === 5) return
  if (!max || (packet.keepalive !== 0 && packet.keepalive! <= max)) return
  opts.log.debug({ client: packet.clientId, keepalive: packet.keepalive, keepalive_max_s: max }, 'keepalive capped')
  packet.keepalive = max
}
