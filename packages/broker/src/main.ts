/**
 * Composition root: wires config, state backend, broker, listeners and the
 * ops HTTP server of one Culex node. Every concern lives in its own folder;
 * this file only connects them.
 */
import { hostname } from 'node:os'
import type { Server } from 'node:http'
import type { Server as NetServer } from 'node:net'
import type { Aedes } from 'aedes'
import type { CulexConfig } from './config/schema.js'
import { createLogger, type Logger } from './log.js'
import { VERSION } from './version.js'
import { createBackend } from './cluster/backend.js'
import { createBroker } from './broker/create.js'
import { createTcpListener } from './listeners/tcp.js'
import { createWsListener } from './listeners/ws.js'
import { listen, stopAccepting } from './listeners/listen.js'
import { HotCounters, createMetrics } from './ops/metrics.js'
import { SocketTracker } from './ops/sockets.js'
import { Readiness } from './ops/readiness.js'
import { createOpsServer } from './ops/http.js'

export { loadConfig, ConfigError } from './config/load.js'
export type { CulexConfig } from './config/schema.js'

export interface CulexNode {
  nodeId: string
  broker: Aedes
  log: Logger
  readiness: Readiness
  ports: { mqtt: number; ws: number; http: number }
  /** graceful stop: not ready, stop accepting, disconnect clients, close persistence */
  close(): Promise<void>
}

export async function startNode(config: CulexConfig, log?: Logger): Promise<CulexNode> {
  const nodeId = config.node_id ?? `${hostname()}-${process.pid}`
  log ??= createLogger(config.log_level, nodeId)
  const readiness = new Readiness()
  const counters = new HotCounters()
  const sockets = new SocketTracker()

  const backend = await createBackend(config.redis_url, log)
  if (backend.mode === 'cluster') readiness.add('redis', backend.healthy)
  const broker = await createBroker({ config, nodeId, backend, counters })
  broker.on('client', (c) => log.debug({ client: c.id }, 'client connected'))
  broker.on('clientDisconnect', (c) => log.debug({ client: c.id }, 'client disconnected'))
  broker.on('clientError', (c, err) => log.debug({ client: c?.id, err: err.message }, 'client error'))
  broker.on('connectionError', (_c, err) => log.debug({ err: err.message }, 'connection error'))
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'broker error'))

  const opsHost = config.http_host ?? config.host
  const http = createOpsServer(readiness, createMetrics({ broker, counters, sockets }))
  const tcp = createTcpListener(broker, sockets)
  const ws = createWsListener(broker, sockets, config.ws_path, 268_435_455)

  const servers: Array<NetServer | Server> = []
  try {
    const httpPort = await listen(http, config.http_port, opsHost)
    servers.push(http)
    const mqttPort = await listen(tcp, config.mqtt_port, config.host)
    servers.push(tcp)
    const wsPort = await listen(ws.server, config.ws_port, config.host)
    servers.push(ws.server)
    readiness.listening = true
    const ports = { mqtt: mqttPort, ws: wsPort, http: httpPort }
    log.info(
      {
        version: VERSION,
        mode: backend.mode,
        listeners: { mqtt: `${config.host}:${mqttPort}`, ws: `${config.host}:${wsPort}${config.ws_path}`, http: `${opsHost}:${httpPort}` },
      },
      'culex ready',
    )

    let closing: Promise<void> | undefined
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        readiness.draining = true
        log.info('draining: no longer ready, closing listeners')
        for (const client of ws.wss.clients) client.terminate()
        const stopped = [stopAccepting(tcp), stopAccepting(ws.server)]
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        sockets.destroyAll()
        await Promise.all(stopped)
        await backend.close()
        http.closeAllConnections()
        await stopAccepting(http)
        log.info('stopped')
      })())
    return { nodeId, broker, log, readiness, ports, close }
  } catch (err) {
    for (const s of servers) s.close()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await backend.close()
    throw err
  }
}
