/**
 * What one node knows only about itself, answered for the cluster-wide routes (rpc.ts):
 *
 *   node     id, version, uptime, clients, message counters and rates
 *   clients  its connected clients matching the filters (one page, sorted by id, and the total)
 *   online   the ids of its connected clients and whether their session is persistent
 *   kick     close a client's connection if it is here
 *
 * Connected clients are read through the seam (seam/aedes-broker.ts clientsOf, seam/aedes-client.ts clientFacts: Aedes'
 * `broker.clients` map and the keepalive, protocol level and inbound in-flight fields) and the
 * Client's typed fields: `subscriptions` (filter -> QoS), `clean` and `conn` (the socket).
 * Kicking destroys `client.conn`, as the /admin/disconnect endpoint always did (an MQTT 5 client
 * gets DISCONNECT 0x98 first).
 */
import type { Aedes, Client } from 'aedes'
import { clientFacts, clientsOf } from '../../seam/index.js'
import { DisconnectReason, disconnectClient } from '../../broker/disconnect.js'
import { clientEndpoint } from '../../auth/conn-details.js'
import type { HotCounters } from '../metrics.js'
import { VERSION } from '../../version.js'
import type { RpcHandlers } from './rpc.js'

interface AedesClient {
  id: string
  clean: boolean
  connected: boolean
  subscriptions: Record<string, unknown>
  conn: { destroy(): void; writableLength?: number }
}

/** Aedes' undocumented `broker.clients` map, through the seam (see the header) */
export const aedesClients = (broker: Aedes): Record<string, AedesClient> => clientsOf(broker) as unknown as Record<string, AedesClient>

export interface ClientInfo {
  id: string
  username: string | null
  node: string
  address: string | null
  protocol: number | null
  keepalive_s: number
  clean: boolean
  subscriptions: number
  inflight: number
  queued_bytes: number
}

export interface ClientFilter {
  client_id?: string
  username?: string
  topic?: string
  node?: string
  offset?: number
  limit?: number
}

export interface NodeFacts {
  id: string
  version: string
  started: number
  uptime_s: number
  clients: number
  messages_in_total: number
  messages_out_total: number
  dropped_total: number
  denied_total: number
  auth_failures_total: number
  rate_in: number
  rate_out: number
}

const RATE_WINDOW = 5

/** messages in/out per second over the last few seconds, sampled once a second */
class RateSampler {
  private readonly samples: Array<{ t: number; inn: number; out: number }> = []
  private readonly timer: NodeJS.Timeout
  constructor(private readonly counters: HotCounters) {
    this.sample()
    this.timer = setInterval(() => this.sample(), 1000)
    this.timer.unref()
  }
  private sample(): void {
    this.samples.push({ t: Date.now(), inn: this.counters.messagesReceived, out: this.counters.messagesDelivered })
    if (this.samples.length > RATE_WINDOW + 1) this.samples.shift()
  }
  rates(): { rate_in: number; rate_out: number } {
    const first = this.samples[0]!
    const now = { t: Date.now(), inn: this.counters.messagesReceived, out: this.counters.messagesDelivered }
    const dt = (now.t - first.t) / 1000
    if (dt <= 0) return { rate_in: 0, rate_out: 0 }
    const round = (n: number): number => Math.round(n * 10) / 10
    return { rate_in: round((now.inn - first.inn) / dt), rate_out: round((now.out - first.out) / dt) }
  }
  close(): void {
    clearInterval(this.timer)
  }
}

export function matches(c: ClientInfo, subs: string[], f: ClientFilter): boolean {
  if (f.client_id && !c.id.startsWith(f.client_id)) return false
  if (f.username !== undefined && f.username !== '' && c.username !== f.username) return false
  if (f.node && c.node !== f.node) return false
  if (f.topic && !subs.some((s) => s.startsWith(f.topic!))) return false
  return true
}

export function localHandlers(opts: {
  broker: Aedes
  nodeId: string
  counters: HotCounters
  usernameOf: (client: Client) => string | undefined
}): { handlers: RpcHandlers; close(): void } {
  const { broker, nodeId, counters, usernameOf } = opts
  const started = Date.now()
  const rates = new RateSampler(counters)

  const info = (c: AedesClient): ClientInfo => infoOf(c, clientFacts(c as unknown as Client))
  const infoOf = (c: AedesClient, facts: ReturnType<typeof clientFacts>): ClientInfo => ({
    id: c.id,
    username: usernameOf(c as unknown as Client) ?? null,
    node: nodeId,
    address: clientEndpoint(c as unknown as Client) ?? null,
    protocol: facts.version,
    keepalive_s: facts.keepaliveS,
    clean: c.clean,
    subscriptions: Object.keys(c.subscriptions).length,
    inflight: facts.inboundInflight,
    queued_bytes: c.conn.writableLength ?? 0,
  })

  const node = (): NodeFacts => ({
    id: nodeId,
    version: VERSION,
    started,
    uptime_s: Math.round((Date.now() - started) / 1000),
    clients: broker.connectedClients ?? 0,
    messages_in_total: counters.messagesReceived,
    messages_out_total: counters.messagesDelivered,
    dropped_total: counters.droppedQos0,
    denied_total: counters.publishDenied,
    auth_failures_total: counters.authFailures,
    ...rates.rates(),
  })

  const clients = (f: ClientFilter): { total: number; items: ClientInfo[] } => {
    if (f.node && f.node !== nodeId) return { total: 0, items: [] }
    const all = aedesClients(broker)
    const found: ClientInfo[] = []
    for (const id in all) {
      const c = all[id]!
      if (!c.connected) continue
      const ci = info(c)
      if (matches(ci, Object.keys(c.subscriptions), f)) found.push(ci)
    }
    found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    // every node sends its first offset + limit: the merged page is within them
    return { total: found.length, items: found.slice(0, (f.offset ?? 0) + (f.limit ?? 100)) }
  }

  const handlers: RpcHandlers = {
    node,
    clients: (a) => clients(a as ClientFilter),
    online: () => Object.values(aedesClients(broker)).filter((c) => c.connected).map((c) => ({ id: c.id, clean: c.clean })),
    kick: (a) => {
      const c = aedesClients(broker)[String(a.id)]
      if (!c) return false
      // an MQTT 5 client is told: DISCONNECT 0x98 Administrative action
      disconnectClient(c as unknown as Client, DisconnectReason.administrativeAction)
      return true
    },
  }
  return { handlers, close: () => rates.close() }
}
