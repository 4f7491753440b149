/**
 * What a node runs in cluster mode on top of the Redis backend: the registry
 * heartbeat, the will sweeper (which also publishes delayed wills and ends
 * expired sessions: MQTT 5 session expiry and will delay kept in Redis instead
 * of Aedes' in-process timers, session-expiry.ts), and the re-sync after the Redis links were
 * down (Redis pub/sub keeps nothing for a disconnected subscriber, so the
 * subscription trie is rebuilt from Redis and the node stays not ready until
 * that is done; a Redis that lost its data meanwhile first gets the connected clients' sessions
 * again: redis-data-loss.ts).
 */
import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import type { CulexConfig } from '../config/schema.js'
import type { CulexRedisPersistence } from './persistence.js'
import { NodeRegistry } from './registry.js'
import { WillSweeper } from './wills.js'
import { SessionExpiry } from './session-expiry.js'
import { DataEpoch, restoreConnected } from './redis-data-loss.js'
import { VERSION } from '../version.js'
import { settleSessionsWith } from '../broker/conformance-session.js'
import { clientsOf, keepWillsOnClose, replaceSessionTimers } from '../seam/index.js'

export interface ClusterLinks {
  sub: Redis
  pub: Redis
  data: Redis
  core: CulexRedisPersistence
}

export interface ClusterRuntime {
  registry: NodeRegistry
  sweeper: WillSweeper
  sessions: SessionExpiry
  /** false from a Redis link drop until subscriptions are re-synced */
  synced(): boolean
  /** `fn` runs (and is waited for) before the node is ready again after Redis came back without its data */
  onDataLost(fn: () => Promise<unknown>): void
  /** how many times this node found Redis had lost its data */
  dataLosses(): number
  /** ports are known once the listeners are up */
  setPorts(ports: Record<string, number>): void
  close(): Promise<void>
}

export async function attachCluster(opts: {
  broker: Aedes
  links: ClusterLinks
  config: CulexConfig
  nodeId: string
  log: Logger
}): Promise<ClusterRuntime> {
  const { broker, links, config, nodeId, log } = opts
  const started = Date.now()
  let ports: Record<string, number> = {}
  const sessions = new SessionExpiry(links.data, links.core, nodeId, log)
  const registry = new NodeRegistry(
    links.data,
    {
      nodeId,
      heartbeatMs: config.heartbeat_interval_ms,
      info: () => ({
        pid: process.pid,
        version: VERSION,
        started,
        clients: broker.connectedClients ?? 0,
        host: config.host,
        ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [`${k}_port`, v])),
      }),
      // taken for dead while alive: the sweeper forgot its clients and adopted their sessions
      onRejoin: () => {
        log.warn('this node missed heartbeats and was taken for dead: its clients and their sessions are re-asserted')
        const clients = clientsOf(broker)
        registry.resyncClients(Object.keys(clients)).catch(() => {})
        sessions.reassert(Object.values(clients)).catch((err: Error) => log.warn({ err: err.message }, 'sessions not re-asserted'))
      },
    },
    log,
  )
  const sweeper = new WillSweeper(
    links.data,
    broker,
    { nodeId, sweepMs: config.will_sweep_interval_ms, willDelayMs: config.will_delay_ms },
    log,
    sessions,
  )
  // a CONNECT waits for an end of its session in progress on any node [MQTT-4.1.0-2]
  settleSessionsWith(broker, sessions)
  // MQTT 5 session expiry and will delay in Redis, for the whole cluster (aedes#839)
  replaceSessionTimers(broker, {
    sessionEnded: (client) => void sessions.released(client),
    willDelayed: (client, _will, delayS) => sweeper.willDelayed(client, delayS),
  })

  // a Redis that comes back without its data gets this node's clients' sessions again (redis-data-loss.ts)
  const epoch = new DataEpoch(links.data)
  const dataLost: Array<() => Promise<unknown>> = []
  let losses = 0
  await epoch.start()
  await registry.start()
  await sweeper.sweepOwnLeftovers()
  sweeper.start()

  // A graceful stop closes every client; stock Aedes then publishes all their wills at once,
  // while the emitter is being closed (QoS 1/2 ones can be lost), even for the clients that
  // reconnect to another node a moment later. In a cluster a stopping node leaves the wills
  // stored and its registration lapses like a dead node's: wills of clients that came back
  // elsewhere are dropped on their CONNECT, the others are published once by the sweeper.
  keepWillsOnClose(broker)
  const onClient = (c: Client): void => {
    registry.clientUp(c.id)
    sessions.connected(c)
  }
  const onGone = (c: { id: string }): void => registry.clientDown(c.id)
  broker.on('client', onClient as never)
  broker.on('clientDisconnect', onGone as never)

  // ---- Redis link loss and re-sync ----------------------------------------
  let synced = true
  let closing = false
  let resyncing: Promise<void> | undefined
  const conns = [links.sub, links.pub, links.data]
  const onDown = (): void => {
    if (closing || !synced) return
    synced = false
    log.warn('redis link lost: not ready until it is back and subscriptions are re-synced')
  }
  const resync = async (): Promise<void> => {
    // the subscriber answers PING only after the re-subscriptions ioredis sends on reconnect
    await links.sub.ping()
    if (await epoch.lost()) {
      await restoreConnected({ broker, db: links.data, core: links.core, sessions, log })
      for (const fn of dataLost) await fn()
      // one loss, however many attempts its restore took
      losses++
    }
    // a restore that failed is made again by the next attempt
    epoch.restored()
    await links.core.resync()
    await registry.resyncClients(Object.keys(clientsOf(broker)))
    await registry.beat()
  }
  const onReady = (): void => {
    if (closing || synced || resyncing || !conns.every((c) => c.status === 'ready')) return
    resyncing = resync()
      .then(
        () => {
          synced = true
          log.info('redis links back, subscriptions re-synced: ready')
        },
        (err: Error) => log.warn({ err: err.message }, 're-sync after redis reconnect failed; retrying'),
      )
      .finally(() => {
        resyncing = undefined
        if (!synced && !closing) setTimeout(onReady, 500).unref()
      })
  }
  // Aedes closes the emitter (and with it the sub/pub links) when it closes: not an outage
  const onBrokerClosed = (): void => {
    closing = true
  }
  broker.once('closed', onBrokerClosed)
  for (const c of conns) {
    c.on('close', onDown)
    c.on('reconnecting', onDown)
    c.on('ready', onReady)
  }

  return {
    registry,
    sweeper,
    sessions,
    synced: () => synced,
    onDataLost: (fn) => void dataLost.push(fn),
    dataLosses: () => losses,
    setPorts(p) {
      ports = p
      registry.beat().catch(() => {})
    },
    async close() {
      closing = true
      for (const c of conns) {
        c.off('close', onDown)
        c.off('reconnecting', onDown)
        c.off('ready', onReady)
      }
      broker.off('client', onClient as never)
      broker.off('clientDisconnect', onGone as never)
      await sweeper.close()
      await registry.close().catch(() => {})
    },
  }
}
