/**
 * `culex cluster up`: a real local cluster, supervised in the foreground.
 * redis-server (AOF on, data in <dir>/redis) -> N Culex nodes on free loopback
 * ports -> HAProxy on the public ports (MQTT, MQTT/TLS, MQTT/WSS, stats), with
 * certificates made on first use. Prints where everything listens, then a line
 * containing `cluster ready` once every node's /readyz is 200 and HAProxy sees
 * them up. SIGINT/SIGTERM (or `culex cluster down`) stops HAProxy, then the
 * nodes (gracefully), then Redis.
 */
import type { Server } from 'node:http'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { nodeSpec } from './node-spec.js'
import { ensureAdminToken } from './admin-token.js'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { findAssets } from './assets.js'
import { ensureCerts } from './certs.js'
import { checkHaproxyConfig, renderHaproxyFile } from './haproxy.js'
import { INSTALL_LINE, assertPortFree, freePort, redisPing, reservePorts, spawnLogged, stopPid, waitUntil, which } from './procs.js'
import { readState, writeState, alive, removeState, type ClusterState } from './state.js'
import { reapStale } from './down.js'
import { printReady } from './banner.js'
import { Supervised, type SupervisedSpec } from './supervisor.js'
import { haproxyServers, tail } from './probe.js'
import { startControl } from './control.js'
import { rollingRestart } from './rolling.js'
import { startHaRedis, type HaRedis } from './ha-redis.js'
import { DEFAULT_TIMINGS, MASTER_NAME } from './sentinel.js'

export class ClusterUpError extends Error {}

export interface UpOptions {
  nodes: number
  dir: string
  bind: string
  mqttPort: number
  tlsPort: number
  wssPort: number
  statsPort: number
  /** HTTPS: the admin API and dashboard through HAProxy */
  apiPort: number
  redisPort?: number
  certHost?: string
  /** undefined = node default (no anonymous clients in cluster mode) */
  allowAnonymous?: boolean
  nodeConfig?: string
  logLevel: string
  keepaliveMaxS: number
  /** HAProxy's health check interval; a stopping node drains for 3 of them (HAProxy takes it out after 2 failed checks) */
  healthCheckMs?: number
  /** first restart delay of a process that died (doubles on each quick failure, up to 30 s) */
  restartDelayMs?: number
  /** > 0: a primary with this many replicas under three sentinels instead of one redis-server (ha-redis.ts) */
  redisReplicas?: number
  /** Sentinel's down-after-milliseconds (failover-timeout: 5 x it, at least 20 s) */
  sentinelDownAfterMs?: number
  /** stdout lines */
  out: (line: string) => void
}

export interface RunningCluster {
  /** graceful: HAProxy, then the nodes, then Redis */
  stop(reason: string): Promise<void>
  /** at once: SIGKILL everything (a second Ctrl-C) */
  kill(): void
  stopped: Promise<void>
}

export async function clusterUp(o: UpOptions): Promise<RunningCluster> {
  const missing = ['redis-server', 'haproxy'].filter((b) => !which(b))
  if (missing.length > 0) {
    throw new ClusterUpError(`${missing.join(' and ')} not found on PATH. Install with:\n  ${INSTALL_LINE}`)
  }
  if (!which('openssl')) throw new ClusterUpError('openssl not found on PATH (certificates). Install with:\n  sudo apt-get install -y openssl')
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 64) throw new ClusterUpError('--nodes must be between 1 and 64')
  const assets = findAssets()
  const dir = resolve(o.dir)
  const show = (p: string): string => {
    const r = relative(process.cwd(), p)
    return r && !r.startsWith('..') && !isAbsolute(r) ? r : p
  }
  const previous = readState(dir)
  if (previous && alive(previous.pid) && previous.pid !== process.pid) {
    throw new ClusterUpError(`a cluster already runs from ${show(dir)} (pid ${previous.pid}); stop it with: culex cluster down --dir ${show(dir)}`)
  }
  if (previous) await reapStale(previous)

  // HAProxy binds these last: no Redis or Sentinel port may be picked among them before (procs.ts)
  reservePorts([o.mqttPort, o.tlsPort, o.wssPort, o.statsPort, o.apiPort])
  for (const [port, what, flag] of [
    [o.mqttPort, 'MQTT', '--mqtt-port'],
    [o.tlsPort, 'MQTT over TLS', '--tls-port'],
    [o.wssPort, 'MQTT over WSS', '--wss-port'],
    [o.statsPort, 'HAProxy stats', '--stats-port'],
    [o.apiPort, 'admin API (HTTPS)', '--api-port'],
  ] as const) {
    await assertPortFree(o.bind, port, what, flag).catch((err: Error) => {
      throw new ClusterUpError(err.message)
    })
  }

  const logs = join(dir, 'logs')
  const redisDir = join(dir, 'redis')
  for (const d of [dir, logs, redisDir]) mkdirSync(d, { recursive: true })

  const checkInterMs = o.healthCheckMs ?? 1000
  const drainMs = 3 * checkInterMs
  const host = o.bind === '0.0.0.0' || o.bind === '::' ? '127.0.0.1' : o.bind
  const statsCsv = `http://${host}:${o.statsPort}/;csv`
  let redis: Supervised | undefined
  let ha: HaRedis | undefined
  let haproxy: Supervised | undefined
  const nodes: Array<{ id: string; sup: Supervised }> = []
  let control: Server | undefined
  let stopping = false
  let resolveStopped!: () => void
  const stopped = new Promise<void>((r) => (resolveStopped = r))
  const state: ClusterState = {
    status: 'starting',
    pid: process.pid,
    dir,
    redis_url: '',
    redis: { pid: 0, port: 0, dir: redisDir },
    nodes: [],
    started: new Date().toISOString(),
  }

  // the state file follows every (re)start: pids, restart counts
  const changed = (): void => {
    if (redis) state.redis.pid = redis.pid ?? 0
    if (ha) state.redis_ha = { master_name: MASTER_NAME, sentinels: ha.ports.sentinels, procs: ha.entries() }
    if (haproxy && state.haproxy) state.haproxy.pid = haproxy.pid ?? 0
    for (const n of nodes) Object.assign(state.nodes.find((e) => e.id === n.id)!, { pid: n.sup.pid ?? 0, restarts: n.sup.restarts })
    if (!stopping) writeState(state)
  }
  const supervise = (spec: SupervisedSpec): Supervised => new Supervised({ ...spec, log: show(spec.log) }, { stopping: () => stopping, out: o.out, changed, backoffFirstMs: o.restartDelayMs })

  const haSups = (): Supervised[] => (ha?.procs ?? []).map((p) => p.sup)
  const stop = async (reason: string): Promise<void> => {
    if (stopping) return stopped
    stopping = true
    o.out(`culex cluster: stopping (${reason})`)
    try {
      if (existsSync(join(dir, 'cluster.json'))) writeState({ ...state, status: 'stopping' })
    } catch {
      /* folder gone */
    }
    for (const c of [haproxy, ...nodes.map((n) => n.sup), redis, ...haSups()]) c?.cancel()
    control?.close()
    await stopPid(haproxy?.pid, 3000)
    // SIGINT: no drain (HAProxy is gone already); the node still closes its clients and persistence cleanly
    await Promise.all(nodes.map((n) => stopPid(n.sup.pid, 12_000, 'SIGINT')))
    await stopPid(redis?.pid, 10_000)
    // the sentinels first: a primary stopping before them would be failed over
    for (const kind of ['sentinel', 'redis'] as const) await Promise.all((ha?.procs ?? []).filter((p) => p.spec.kind === kind).map((p) => stopPid(p.sup.pid, 10_000)))
    removeState(dir)
    o.out('culex cluster stopped')
    resolveStopped()
  }

  try {
    // ---- certificates
    const certs = await ensureCerts(assets.makeCerts, join(dir, 'certs'), o.certHost)
    state.certs = { ca: certs.ca, pem: certs.pem }

    // ---- the admin token of the API and dashboard: CULEX_ADMIN_TOKEN, or made once in <dir>/admin-token (0600)
    const adminToken = ensureAdminToken(dir)
    state.admin_token_file = adminToken.file
    const nodeEnv = { ...process.env, CULEX_ADMIN_TOKEN: adminToken.token }

    // ---- Redis under Sentinel (--redis-replicas N): primary, replicas, three sentinels
    if (o.redisReplicas) {
      const downAfterMs = o.sentinelDownAfterMs ?? DEFAULT_TIMINGS.downAfterMs
      ha = await startHaRedis({ dir: redisDir, logs, replicas: o.redisReplicas, timings: { downAfterMs, failoverTimeoutMs: Math.max(20_000, 5 * downAfterMs) }, supervise })
      state.redis_url = ha.target
      state.redis = { pid: ha.procs[0]!.sup.pid ?? 0, port: ha.ports.primary, dir: redisDir }
      changed()
    }
    // ---- redis-server, AOF on (restarted with the same arguments if it dies: it replays the AOF)
    const redisPort = o.redisPort ?? (await freePort('127.0.0.1'))
    const redisLog = join(logs, 'redis.log')
    const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes']
    if (!ha) state.redis = { pid: 0, port: redisPort, dir: redisDir }
    if (!ha) state.redis_url = `redis://127.0.0.1:${redisPort}`
    redis = ha ? undefined : supervise({
      name: 'redis-server',
      log: redisLog,
      spawn: () => spawnLogged(which('redis-server')!, redisArgs, redisLog),
      ready: (proc) =>
        waitUntil(() => redisPing('127.0.0.1', redisPort), 15_000, 'redis-server', () =>
          proc.exitCode !== null ? `redis-server exited at start; see ${show(redisLog)}` : undefined,
        ),
    })
    await redis?.start()

    // ---- nodes (node-spec.ts)
    for (let i = 1; i <= o.nodes; i++) {
      const id = `culex-${i}`
      const spec = nodeSpec({
        id, cli: assets.cli, logs, state, redisFlags: () => (ha ? ha.flags : ['--redis-url', state.redis_url]),
        ...(o.nodeConfig ? { nodeConfig: o.nodeConfig } : {}),
        ...(o.allowAnonymous !== undefined ? { allowAnonymous: o.allowAnonymous } : {}),
        keepaliveMaxS: o.keepaliveMaxS, logLevel: o.logLevel, drainMs, env: nodeEnv,
      })
      nodes.push({ id, sup: supervise(spec) })
    }
    await Promise.all(nodes.map((n) => n.sup.start()))

    // ---- haproxy
    const config = join(dir, 'haproxy.cfg')
    writeFileSync(
      config,
      renderHaproxyFile(assets.haproxyTemplate, {
        bind: o.bind,
        mqttPort: o.mqttPort,
        tlsPort: o.tlsPort,
        wssPort: o.wssPort,
        statsPort: o.statsPort,
        apiPort: o.apiPort,
        pem: certs.pem,
        keepaliveMaxS: o.keepaliveMaxS,
        checkInterMs,
        nodes: state.nodes.map((n) => ({ id: n.id, host: '127.0.0.1', mqtt: n.mqtt!, ws: n.ws!, http: n.http! })),
      }),
    )
    await checkHaproxyConfig(config)
    const haproxyLog = join(logs, 'haproxy.log')
    state.haproxy = { pid: 0, config, bind: o.bind, mqtt_port: o.mqttPort, tls_port: o.tlsPort, wss_port: o.wssPort, stats_port: o.statsPort, api_port: o.apiPort }
    haproxy = supervise({
      name: 'haproxy',
      log: haproxyLog,
      spawn: () => spawnLogged(which('haproxy')!, ['-db', '-f', config], haproxyLog),
      ready: (proc) =>
        waitUntil(
          async () => [...(await haproxyServers(statsCsv)).values()].flat().filter((st) => st === 'UP').length >= 2 * o.nodes,
          30_000,
          'HAProxy to see every node up',
          () => (proc.exitCode !== null ? `haproxy exited at start:\n${tail(haproxyLog)}` : undefined),
        ),
    })
    await haproxy.start()
    control = await startControl(dir, {
      restart: (progress) => {
        const line = (l: string): void => {
          o.out(`culex cluster restart: ${l}`)
          progress(l)
        }
        return rollingRestart({
          nodes,
          haproxyStates: async (id) => (await haproxyServers(statsCsv)).get(id) ?? [],
          exitWithinMs: drainMs + 12_000,
          haproxyWithinMs: drainMs + 10_000,
          stopping: () => stopping,
          progress: line,
        })
      },
    })

    // ---- ready
    state.status = 'ready'
    writeState(state)
    printReady({ o, state, ha, certs, host, dir, redisDir, redisLog, show, adminTokenFile: adminToken.file })
    o.out(`culex cluster ready: ${o.nodes} node${o.nodes === 1 ? '' : 's'} (stop with Ctrl-C or: culex cluster down --dir ${show(dir)})`)
  } catch (err) {
    await stop('start-up failed')
    throw err instanceof ClusterUpError ? err : new ClusterUpError((err as Error).message)
  }
  const kill = (): void => {
    stopping = true
    for (const c of [haproxy, ...nodes.map((n) => n.sup), redis, ...haSups()]) {
      c?.cancel()
      try {
        if (c?.pid) process.kill(c.pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    removeState(dir)
  }
  return { stop, kill, stopped }
}
