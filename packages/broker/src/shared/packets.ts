/**
 * What the shared subscription router (router.ts) exchanges with the emitter, the cluster bus
 * and the Aedes side (share-aedes.ts): the message fields, the member packet, the host.
 */
import type { Logger } from '../log.js'
import type { Strategy } from './strategy.js'
import type { ShareStore } from './store.js'

/** one choice carried with a message: group key, member client id, member's node */
export type ShareChoice = [string, string, string]

/** a message as the emitter carries it (aedes-packet Packet plus our fields) */
export interface SharePacket {
  cmd?: string
  topic: string
  payload: Buffer
  qos: number
  retain?: boolean
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  /** the members picked for it, one per matching group */
  share?: ShareChoice[]
  /** a redispatch: the message's own topic (its `topic` is REDISPATCH_TOPIC) */
  shareTopic?: string
  /** MQTT 5 properties, and aedes-packet's absolute expiry (ms since the epoch) */
  properties?: Record<string, unknown>
  messageExpiry?: number
}

/**
 * Topic of share-only messages (a redispatch to another member): it starts with `$`, so no
 * subscription starting with a wildcard matches it [MQTT-4.7.2-1], and `#` inside a level makes
 * it impossible as a filter [MQTT-4.7.1-2], so no client subscription ever matches it.
 */
export const REDISPATCH_TOPIC = '$culex#share'

/** what a member is sent: brokerId marks a share delivery and names its in-flight record */
export interface MemberPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: number
  retain: false
  dup: false
  brokerId: string
  brokerCounter: number
  clientId?: string
  properties?: Record<string, unknown>
  /** aedes-packet's absolute expiry (ms since the epoch), on a delivery kept in the member's session (its replay drops it past that) */
  messageExpiry?: number
}
/** brokerId of every share delivery: `$share|<group key>|<origin broker>` (its counter: the origin's) */
export const DELIVERY_PREFIX = '$share|'
/**
 * brokerId of a share delivery kept in the member's session (QoS 2 to a member whose session
 * outlives its connection, delivery.ts handOff): `$share|/<group key>|<origin broker>`. A group
 * key never starts with "/" (a share name has at least one character and no "/", [MQTT-4.8.2-1]).
 */
export const SESSION_PREFIX = `${DELIVERY_PREFIX}/`
/**
 * the in-flight record of a delivered share packet, from the brokerId/counter it went out with;
 * undefined: not a share delivery, or one kept in the member's session (its record is gone)
 */
export function fieldOfDelivery(brokerId: unknown, brokerCounter: unknown): string | undefined {
  return typeof brokerId === 'string' && brokerId.startsWith(DELIVERY_PREFIX) && !brokerId.startsWith(SESSION_PREFIX) ? `${brokerId.slice(DELIVERY_PREFIX.length)}:${Number(brokerCounter)}` : undefined
}

/** the Aedes node, as the router needs it (share-aedes.ts) */
export interface ShareHost {
  /** the connected client object with this id on this node */
  client(clientId: string): object | undefined
  /** hand a message to a local client (its QoS already the member's), picked as a member of group `key` */
  deliver(client: object, packet: MemberPacket, cb: () => void, key: string): void
  /** put a message for a local client into its session store, as its session's messages are, before it is delivered */
  keep(client: object, packet: MemberPacket, key: string): Promise<void>
  /** a share-only message to every node (this one included) */
  emit(packet: SharePacket): void
  /**
   * resolves once every message this node's emitter took before the call has been emitted (its
   * emit callback fired: a QoS 1 publisher's PUBACK has gone, broker/puback-after-publish.ts)
   */
  barrier(): Promise<void>
  /** the node is stopping: its emitter closes */
  stopping(): boolean
}

export interface GroupStats {
  messages: number
  redispatched: number
  dropped: number
}

export interface RouterOptions {
  nodeId: string
  strategy: Strategy
  queueLimit: number
  store: ShareStore
  log: Logger
}
