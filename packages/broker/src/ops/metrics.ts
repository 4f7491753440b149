/**
 * Prometheus metrics (prom-client). Hot-path counters are plain integers
 * bumped by the broker hooks; prom-client reads them only at scrape time
 * (`collect`), so counting allocates nothing per message.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Aedes } from 'aedes'
import type { SocketTracker } from './sockets.js'

export class HotCounters {
  messagesReceived = 0
  messagesDelivered = 0
  publishDenied = 0
  droppedQos0 = 0
  /** deliveries handed to clients and not yet written (limits/guard.ts); the cluster bus reads it for back-pressure */
  queuedDeliveries = 0
  /** connections closed for a client's fault: a malformed packet (limits/guard.ts) or an exception in its handling (limits/client-faults.ts) */
  readonly clientErrors = { malformed_packet: 0, exception: 0 }
}

export interface MetricSources {
  broker: Aedes
  counters: HotCounters
  sockets: SocketTracker
}

function monotonic(name: string, help: string, read: () => number, registry: Registry): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset()
      this.inc(read())
    },
  })
}

export function createMetrics({ broker, counters, sockets }: MetricSources): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  new Gauge({
    name: 'culex_clients_connected',
    help: 'MQTT clients connected to this node',
    registers: [registry],
    collect() {
      this.set(broker.connectedClients ?? 0)
    },
  })
  monotonic('culex_messages_received_total', 'PUBLISH packets received from clients', () => counters.messagesReceived, registry)
  monotonic('culex_messages_delivered_total', 'PUBLISH packets delivered to subscribers', () => counters.messagesDelivered, registry)
  monotonic('culex_publish_denied_total', 'PUBLISH packets refused by authorization', () => counters.publishDenied, registry)
  monotonic('culex_messages_dropped_total', 'QoS 0 messages dropped for slow subscribers', () => counters.droppedQos0, registry)
  new Counter({
    name: 'culex_client_errors_total',
    help: 'Client connections closed for a malformed packet or an exception in their handling',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [reason, n] of Object.entries(counters.clientErrors)) this.inc({ reason }, n)
    },
  })
  monotonic('culex_bytes_received_total', 'Bytes read from client sockets', () => sockets.bytesRead, registry)
  monotonic('culex_bytes_sent_total', 'Bytes written to client sockets', () => sockets.bytesWritten, registry)
  new Gauge({
    name: 'culex_queued_deliveries',
    help: 'Deliveries waiting to be written to client sockets on this node',
    registers: [registry],
    collect() {
      this.set(counters.queuedDeliveries)
    },
  })
  new Gauge({
    name: 'culex_subscriptions',
    help: 'Subscriptions held by clients connected to this node',
    registers: [registry],
    collect() {
      const clients = (broker as unknown as { clients: Record<string, { subscriptions: object }> }).clients
      let n = 0
      for (const id in clients) n += Object.keys(clients[id]!.subscriptions).length
      this.set(n)
    },
  })
  new Gauge({
    name: 'culex_retained_messages',
    help: 'Retained messages stored (cluster-wide in cluster mode)',
    registers: [registry],
    async collect() {
      let n = 0
      const persistence = (broker as unknown as { persistence: { createRetainedStream(p: string): AsyncIterable<unknown> } }).persistence
      for await (const _ of persistence.createRetainedStream('#')) n++
      this.set(n)
    },
  })
  return registry
}
