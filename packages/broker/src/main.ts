/**
 * Composition root: wires config, state backend, broker, listeners and the
 * ops HTTP server of one Culex node. Every concern lives in its own folder;
 * this file only connects them.
 */
// first: mqtt-packet loads there, with its per-packet debug calls off (issue 15)
import { mqttPacketDebug } from './seam/mqtt-packet-debug.js'
import { hostname } from 'node:os'
import type { Server } from 'node:http'
import type { Server as NetServer } from 'node:net'
import type { Aedes } from 'aedes'
import { minReplicasAcked, type CulexConfig } from './config/schema.js'
import { createLogger, type Logger } from './log.js'
import { VERSION } from './version.js'
import { createBackend } from './cluster/backend.js'
import { targetOf } from './cluster/redis-connect.js'
import { createBroker } from './broker/create.js'
import { createTcpListener } from './listeners/tcp.js'
import { closeWebSockets, createWsListener } from './listeners/ws.js'
import { listen, stopAccepting } from './listeners/listen.js'
import { HotCounters, createMetrics, registerBusMetrics, registerRedisDataLossMetric } from './ops/metrics.js'
import { SocketTracker } from './ops/sockets.js'
import { Readiness } from './ops/readiness.js'
import { createOpsServer } from './ops/http.js'
import { createApi } from './ops/api/index.js'
import { attachCluster } from './cluster/index.js'
import { createProxyProtocolGate } from './listeners/proxy-protocol.js'
import { clientEndpoint } from './auth/conn-details.js'
import { createSecurity } from './auth/setup.js'
import { createTlsListener } from './listeners/tls.js'
import { ClientFaults } from './limits/client-faults.js'
import { createClusterInterest } from './cluster/interest.js'
import { startShared } from './shared/index.js'
import { registerShareMetrics } from './shared/metrics.js'
import { redisRefusals } from './ops/redis-refusals.js'

export { loadConfig, ConfigError } from './config/load.js'
export type { CulexConfig } from './config/schema.js'

export interface CulexNode {
  nodeId: string
  broker: Aedes
  log: Logger
  readiness: Readiness
  ports: { mqtt: number; ws: number; http: number; tls?: number }
  /** graceful stop: not ready, (drain_ms unless `drain: false`), stop accepting, disconnect clients, close persistence */
  close(opts?: { drain?: boolean }): Promise<void>
}

export async function startNode(config: CulexConfig, log?: Logger): Promise<CulexNode> {
  const nodeId = config.node_id ?? `${hostname()}-${process.pid}`
  log ??= createLogger(config.log_level, nodeId)
  const readiness = new Readiness()
  const counters = new HotCounters()
  const sockets = new SocketTracker()
  // an exception in one client's handling closes that client, not the node (limits/client-faults.ts)
  const faults = new ClientFaults(counters, log)

  // users, ACL, limits (auth/setup.ts); throws on a bad users/ACL file before any port opens
  const security = createSecurity({ config, log, counters, faults })
  readiness.add('auth', security.ready)
  // cluster flow control (cluster/bus.ts): the same byte budget as the publish gate (broker/backpressure.ts)
  const backend = await createBackend(targetOf(config), log, nodeId, {
    backlog: () => {
      counters.resyncBacklog()
      return counters.queuedBytes
    },
    highWater: config.delivery_buffer_bytes,
    onShed: () => counters.dropped.node_overloaded++,
  }, { minReplicas: minReplicasAcked(config), timeoutMs: config.redis_replicas_ack_timeout_ms })
  if (backend.mode === 'cluster') readiness.add('redis', backend.healthy)
  const { broker, subscribers, retainedCount } = await createBroker({ config, nodeId, backend, counters, faults, hooks: security.hooks, log })
  // QoS 1/2 acknowledgements wait for redis_min_replicas_acked replicas (cluster/replica-acks.ts)
  backend.acks?.attach(broker)
  security.attach(broker)
  // cluster mode: registry heartbeat, will sweeper, re-sync after Redis outages (cluster/index.ts)
  const cluster = backend.links ? await attachCluster({ broker, links: backend.links, config, nodeId, log }) : undefined
  if (cluster) readiness.add('redis-resync', cluster.synced)
  // shared subscriptions `$share/<group>/<filter>` across the cluster (shared/index.ts)
  const shared = await startShared({ broker, config, nodeId, log, links: backend.links })
  // PUBACK 0x10 No matching subscribers (broker/no-subscribers.ts): the cluster's share groups count
  subscribers?.attachShareGroups((topic) => shared.router.groups.size > 0 && shared.router.groups.match(topic).length > 0)
  // ... and the other nodes' subscriptions (cluster/interest.ts), known before this node takes clients
  const interest = backend.links && subscribers ? createClusterInterest({ data: backend.links.data, sub: backend.links.sub, nodeId, log }) : undefined
  if (interest && subscribers) {
    subscribers.attachRemote(interest)
    await interest.start()
  }
  // a v5 session that expired leaves its `$share` groups (shared/router.ts): in a cluster
  // cluster/session-expiry.ts ends it, on one node Aedes' own timer (public event sessionExpired)
  const leaveGroups = (id: string): void =>
    void shared.router.sessionEnded(id).catch((err: Error) => log.warn({ err: err.message, client: id }, 'shared subscription: expired session not removed from its groups'))
  if (cluster) cluster.sessions.onEnded(leaveGroups)
  else broker.on('sessionExpired', (c) => leaveGroups(c.id))
  // Redis lost its data: this node's members are in their groups again, on every node, before it is ready (redis-data-loss.ts)
  cluster?.onDataLost(async () => {
    await shared.router.reload()
    await shared.router.reassert(true)
  })
  // per connect and close: only at debug level (its arguments, the address read from the socket, are made before pino looks at the level)
  if (log.isLevelEnabled('debug')) {
    broker.on('client', (c) => log.debug({ client: c.id, address: clientEndpoint(c) }, 'client connected'))
    broker.on('clientDisconnect', (c) => log.debug({ client: c.id }, 'client disconnected'))
  }
  // Redis refused a command for the client: a warning (ops/redis-refusals.ts); its own errors: debug
  const refused = redisRefusals(log, () => counters.clientErrors.redis++)
  broker.on('clientError', (c, err) => refused(c?.id, err) || log.debug({ client: c?.id, err: err.message }, 'client error'))
  broker.on('connectionError', (_c, err) => log.debug({ err: err.message }, 'connection error'))
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'broker error'))

  const opsHost = config.http_host ?? config.host
  // the admin REST API and dashboard (ops/api/), cluster-wide through Redis in cluster mode
  const api = await createApi({ config, nodeId, broker, backend, security, counters, log })
  const bodyLimit = Math.ceil((config.max_packet_size * 4) / 3) + 64 * 1024 // a base64 payload of max_packet_size and the JSON around it
  const metrics = createMetrics({ broker, counters, sockets, retainedCount })
  registerShareMetrics(metrics, shared.router)
  backend.acks?.register(metrics)
  if (backend.busStats) registerBusMetrics(metrics, backend.busStats)
  if (cluster) registerRedisDataLossMetric(metrics, cluster.dataLosses)
  const ops = await createOpsServer(readiness, metrics, log, [security.routes, api.plugin], bodyLimit, config.trusted_proxies)
  const http = ops.server
  // PROXY protocol header accepted only from trusted_proxies (listeners/proxy-protocol.ts)
  const proxyGate = (websocket: boolean) =>
    createProxyProtocolGate({ trustedProxies: config.trusted_proxies, log, timeoutMs: config.connect_timeout_ms, websocket })
  // connection cap first (counts idle sockets too), then PROXY protocol, then per-address limits on the real address
  const { capGate, addressGate } = security.limits
  const tcp = createTcpListener(broker, sockets, [capGate, proxyGate(false), addressGate])
  const ws = createWsListener(broker, sockets, config.ws_path, config.max_packet_size + 5, [capGate, proxyGate(true), addressGate])

  const servers: Array<NetServer | Server> = []
  try {
    const httpPort = await listen(http, config.http_port, opsHost)
    servers.push(http)
    const mqttPort = await listen(tcp, config.mqtt_port, config.host)
    servers.push(tcp)
    const wsPort = await listen(ws.server, config.ws_port, config.host)
    servers.push(ws.server)
    // optional MQTT over TLS terminated by the node (listeners/tls.ts); HAProxy usually terminates TLS
    if (config.tls_port !== undefined && (!config.tls_cert || !config.tls_key)) throw new Error('tls_port needs tls_cert and tls_key')
    const tls =
      config.tls_port === undefined
        ? undefined
        : createTlsListener(
            broker,
            sockets,
            { cert: config.tls_cert!, key: config.tls_key!, ca: config.tls_ca, requireClientCert: config.tls_require_client_cert, handshakeTimeoutMs: config.connect_timeout_ms },
            [capGate, addressGate],
          )
    const tlsPort = tls ? await listen(tls, config.tls_port!, config.host) : undefined
    if (tls) servers.push(tls)
    readiness.listening = true
    const ports = { mqtt: mqttPort, ws: wsPort, http: httpPort, ...(tlsPort !== undefined ? { tls: tlsPort } : {}) }
    cluster?.setPorts(ports)
    log.info(
      {
        version: VERSION,
        mode: backend.mode,
        mqtt_packet_debug: mqttPacketDebug().state,
        listeners: {
          mqtt: `${config.host}:${mqttPort}`,
          ws: `${config.host}:${wsPort}${config.ws_path}`,
          http: `${opsHost}:${httpPort}`,
          ...(tlsPort !== undefined ? { tls: `${config.host}:${tlsPort}` } : {}),
        },
      },
      'culex ready',
    )
    log.info(security.describe(), 'security')

    let closing: Promise<void> | undefined
    const close = (opts: { drain?: boolean } = {}): Promise<void> =>
      (closing ??= (async () => {
        // drain: /readyz 503 first, clients kept, so HAProxy's checks take the node out before its
        // clients reconnect (they must land on the other nodes, not here again)
        readiness.draining = true
        if (config.drain_ms > 0 && opts.drain !== false) {
          log.info({ drain_ms: config.drain_ms }, 'draining: /readyz 503, clients kept until the load balancer took the node out')
          await new Promise((r) => setTimeout(r, config.drain_ms))
        }
        log.info('closing listeners, disconnecting clients')
        const stopped = [stopAccepting(tcp), stopAccepting(ws.server), ...(tls ? [stopAccepting(tls)] : [])]
        // Aedes tells each MQTT 5 client why first (DISCONNECT 0x8B, [MQTT-3.14.0-1]), over
        // WebSocket too: the WebSockets are ended after it, once they sent it (listeners/ws.ts)
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        await closeWebSockets(ws.wss)
        sockets.destroyAll()
        await Promise.all(stopped)
        await api.close()
        await shared.close()
        interest?.close()
        await cluster?.close()
        await backend.close()
        await security.close()
        http.closeAllConnections()
        await stopAccepting(http)
        await ops.app.close()
        log.info('stopped')
      })())
    return { nodeId, broker, log, readiness, ports, close }
  } catch (err) {
    for (const s of servers) s.close()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await shared.close()
    interest?.close()
    await cluster?.close()
    await backend.close()
    await security.close()
    throw err
  }
}
