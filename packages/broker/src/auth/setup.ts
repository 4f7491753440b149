/**
 * Security of one node, assembled from the config: user and ACL sources,
 * the Aedes hooks, the connection gate, the per-connection guards and the
 * admin endpoints. main.ts plugs the parts in; this file owns their wiring.
 */
import type { Aedes, AedesOptions, Client } from 'aedes'
import { clusterMode, type CulexConfig } from '../config/schema.js'
import { targetOf } from '../cluster/redis-connect.js'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'
import type { OpsPlugin } from '../ops/http.js'
import { FailureBackoff } from '../limits/rate.js'
import { createConnectionLimits, type ConnectionLimits } from '../limits/gate.js'
import { guardBroker } from '../limits/guard.js'
import type { ClientFaults } from '../limits/client-faults.js'
import { createAuthHooks } from './hooks.js'
import { AuthState, startFileSource, startRedisSource, type Source } from './state.js'
import { adminRoutes, createHttpLogin, type HttpLogin } from './admin.js'
import { clientsOf } from '../seam/index.js'
import { DisconnectReason, disconnectClient } from '../broker/disconnect.js'

export interface Security {
  /** Aedes hooks and options for createBroker */
  hooks: Partial<AedesOptions>
  limits: ConnectionLimits
  /** the /admin/ endpoints on the ops server */
  routes: OpsPlugin
  /** the users and ACL in force (the REST API reads them) */
  state: AuthState
  /** re-read users and ACL now (after the REST API changed them) */
  reload(): Promise<void>
  /** MQTT users' logins over HTTP (HTTP publish with Basic auth) */
  httpLogin: HttpLogin
  /** the client's username, once authenticated */
  usernameOf(client: Client): string | undefined
  /** install the per-connection guards and user-removal handling on the broker */
  attach(broker: Aedes): void
  /** for /readyz: users and ACL loaded */
  ready(): boolean
  /** the start-up log's security line */
  describe(): Record<string, unknown>
  close(): Promise<void>
}

export class SecurityConfigError extends Error {}

export function createSecurity({ config, log, counters, faults }: { config: CulexConfig; log: Logger; counters: HotCounters; faults: ClientFaults }): Security {
  const cluster = clusterMode(config)
  if (cluster && config.users_file) {
    throw new SecurityConfigError('users_file is for a single node: in cluster mode users live in Redis (culex user add <name> --redis URL)')
  }
  const state = new AuthState()
  const source: Source = cluster
    ? startRedisSource(state, { url: targetOf(config)!, aclFile: config.acl_file, log, connectionName: config.node_id ? `culex-${config.node_id}-auth` : undefined })
    : startFileSource(state, { usersFile: config.users_file, aclFile: config.acl_file, log })

  const backoff = { threshold: config.auth_fail_threshold, baseMs: config.auth_backoff_ms, maxMs: config.auth_backoff_max_ms }
  const addressBackoff = new FailureBackoff(backoff)
  const userBackoff = new FailureBackoff(backoff)
  const auth = createAuthHooks({
    state,
    counters,
    log,
    cluster,
    allowAnonymous: config.allow_anonymous,
    maxClientIdLength: config.max_client_id_length,
    maxTopicLength: config.max_topic_length,
    certAsUsername: config.cert_cn_as_username,
    addressBackoff,
    userBackoff,
  })
  const limits = createConnectionLimits({
    maxConnections: config.max_connections,
    connectsPerSecond: config.max_connects_per_s_per_ip,
    addressBackoff,
    trustedProxies: config.trusted_proxies,
    log,
  })
  let broker: Aedes | undefined

  const describe = (): Record<string, unknown> => {
    const anon = auth.anonymous()
    return {
      allow_anonymous: anon.allowed,
      allow_anonymous_reason: anon.reason,
      users: state.loaded ? state.users.size : 'loading',
      users_from: cluster ? 'redis' : (config.users_file ?? 'none'),
      acl: state.acl !== undefined,
      denied_publish: 'closes the connection [MQTT-3.3.5-2]',
    }
  }

  let lastAnon = auth.anonymous().allowed
  state.on('change', ({ removed }: { removed: string[] }) => {
    const anon = auth.anonymous()
    if (anon.allowed !== lastAnon) {
      lastAnon = anon.allowed
      log.info({ allow_anonymous: anon.allowed, reason: anon.reason }, 'allow_anonymous changed')
    }
    if (!broker || removed.length === 0) return
    const gone = new Set(removed)
    const clients = clientsOf(broker)
    for (const id in clients) {
      const a = auth.authOf(clients[id]!)
      if (a?.via === 'password' && a.username !== undefined && gone.has(a.username)) {
        log.info({ client: id, username: a.username }, 'user removed: disconnecting its client')
        disconnectClient(clients[id]!, DisconnectReason.administrativeAction)
      }
    }
  })

  const routes = adminRoutes(config.admin_token, {
    status: () => ({ ...describe(), connections: limits.open, refused: limits.refused, dropped_qos0: counters.droppedQos0, publish_denied: counters.publishDenied }),
    reload: () => source.reload(),
    disconnect: (id) => {
      const c = broker && clientsOf(broker)[id]
      if (!c) return false
      disconnectClient(c, DisconnectReason.administrativeAction)
      return true
    },
  })

  return {
    hooks: {
      ...auth.hooks,
      maxTopicLevels: config.max_topic_levels,
      drainTimeout: config.drain_timeout_ms,
    },
    limits,
    routes,
    state,
    reload: () => source.reload(),
    httpLogin: createHttpLogin(state, addressBackoff, userBackoff),
    usernameOf: (client) => auth.authOf(client)?.username,
    attach(b) {
      broker = b
      guardBroker(b, {
        maxPacketSize: config.max_packet_size,
        publishesPerSecond: config.max_publishes_per_s,
        maxQueued: config.max_queued,
        maxQueuedBytes: config.max_queued_bytes,
        qos0ClientBytes: config.qos0_client_buffer_bytes,
        maxInflightOut: config.max_outgoing_inflight,
        counters,
        log,
        faults,
      })
    },
    ready: () => state.loaded,
    describe,
    close: () => source.close(),
  }
}
