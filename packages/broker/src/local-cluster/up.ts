/**
 * `culex cluster up`: a real local cluster, supervised in the foreground.
 * redis-server (AOF on, data in <dir>/redis) -> N Culex nodes on free loopback
 * ports -> HAProxy on the public ports (MQTT, MQTT/TLS, MQTT/WSS, stats), with
 * certificates made on first use. Prints where everything listens, then a line
 * containing `cluster ready` once every node's /readyz is 200 and HAProxy sees
 * them up. SIGINT/SIGTERM (or `culex cluster down`) stops HAProxy, then the
 * nodes (gracefully), then Redis.
 */
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { findAssets } from './assets.js'
import { ensureCerts } from './certs.js'
import { checkHaproxyConfig, renderHaproxyFile } from './haproxy.js'
import { INSTALL_LINE, aliveAs, assertPortFree, freePort, redisPing, spawnLogged, stopPid, waitUntil, which } from './procs.js'
import { readState, removeState, writeState, alive, type ClusterState } from './state.js'

export class ClusterUpError extends Error {}

export interface UpOptions {
  nodes: number
  dir: string
  bind: string
  mqttPort: number
  tlsPort: number
  wssPort: number
  statsPort: number
  redisPort?: number
  certHost?: string
  /** undefined = node default (no anonymous clients in cluster mode) */
  allowAnonymous?: boolean
  nodeConfig?: string
  logLevel: string
  keepaliveMaxS: number
  /** stdout lines */
  out: (line: string) => void
}

interface Child {
  name: string
  proc: ChildProcess
  log: string
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

  for (const [port, what, flag] of [
    [o.mqttPort, 'MQTT', '--mqtt-port'],
    [o.tlsPort, 'MQTT over TLS', '--tls-port'],
    [o.wssPort, 'MQTT over WSS', '--wss-port'],
    [o.statsPort, 'HAProxy stats', '--stats-port'],
  ] as const) {
    await assertPortFree(o.bind, port, what, flag).catch((err: Error) => {
      throw new ClusterUpError(err.message)
    })
  }

  const logs = join(dir, 'logs')
  const redisDir = join(dir, 'redis')
  for (const d of [dir, logs, redisDir]) mkdirSync(d, { recursive: true })

  const children: Child[] = []
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

  const exitWatch = (c: Child): void => {
    c.proc.on('exit', (code, signal) => {
      if (!stopping) o.out(`culex cluster: ${c.name} exited (${signal ?? `code ${code}`}); see ${show(c.log)}`)
    })
  }

  const stop = async (reason: string): Promise<void> => {
    if (stopping) return stopped
    stopping = true
    o.out(`culex cluster: stopping (${reason})`)
    try {
      if (existsSync(join(dir, 'cluster.json'))) writeState({ ...state, status: 'stopping' })
    } catch {
      /* folder gone */
    }
    const haproxy = children.find((c) => c.name === 'haproxy')
    await stopPid(haproxy?.proc.pid, 3000)
    await Promise.all(children.filter((c) => c.name.startsWith('node ')).map((c) => stopPid(c.proc.pid, 12_000)))
    const redis = children.find((c) => c.name === 'redis-server')
    await stopPid(redis?.proc.pid, 10_000)
    removeState(dir)
    o.out('culex cluster stopped')
    resolveStopped()
  }

  try {
    // ---- certificates
    const certs = await ensureCerts(assets.makeCerts, join(dir, 'certs'), o.certHost)
    state.certs = { ca: certs.ca, pem: certs.pem }

    // ---- redis-server, AOF on
    const redisPort = o.redisPort ?? (await freePort('127.0.0.1'))
    const redisLog = join(logs, 'redis.log')
    const redis: Child = {
      name: 'redis-server',
      log: redisLog,
      proc: spawnLogged(
        which('redis-server')!,
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'],
        redisLog,
      ),
    }
    children.push(redis)
    exitWatch(redis)
    state.redis = { pid: redis.proc.pid!, port: redisPort, dir: redisDir }
    state.redis_url = `redis://127.0.0.1:${redisPort}`
    writeState(state)
    await waitUntil(() => redisPing('127.0.0.1', redisPort), 15_000, 'redis-server', () =>
      redis.proc.exitCode !== null ? `redis-server exited at start; see ${show(redisLog)}` : undefined,
    )

    // ---- nodes
    for (let i = 1; i <= o.nodes; i++) {
      const id = `culex-${i}`
      const log = join(logs, `${id}.log`)
      writeFileSync(log, '')
      const args = [
        assets.cli, 'start',
        ...(o.nodeConfig ? ['--config', resolve(o.nodeConfig)] : []),
        '--redis-url', state.redis_url, '--node-id', id, '--host', '127.0.0.1',
        '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0',
        '--trusted-proxies', '127.0.0.1', '--keepalive-max-s', String(o.keepaliveMaxS), '--log-level', nodeLogLevel(o.logLevel),
        ...(o.allowAnonymous !== undefined ? ['--allow-anonymous', String(o.allowAnonymous)] : []),
      ]
      const node: Child = { name: `node ${id}`, log, proc: spawnLogged(process.execPath, args, log) }
      children.push(node)
      exitWatch(node)
      state.nodes.push({ id, pid: node.proc.pid!, log })
    }
    writeState(state)
    await Promise.all(
      state.nodes.map(async (n, i) => {
        const proc = children.find((c) => c.name === `node ${n.id}`)!.proc
        let ready: { listeners: Record<string, string> } | undefined
        await waitUntil(
          () => {
            ready = readyLine(n.log)
            return ready !== undefined
          },
          30_000,
          `node ${n.id} to start`,
          () => (proc.exitCode !== null ? `node ${n.id} exited at start:\n${tail(n.log)}` : undefined),
        )
        const port = (s: string | undefined): number => Number(/:(\d+)/.exec(s ?? '')?.[1])
        state.nodes[i] = { ...n, mqtt: port(ready!.listeners.mqtt), ws: port(ready!.listeners.ws), http: port(ready!.listeners.http) }
      }),
    )
    writeState(state)
    await Promise.all(
      state.nodes.map((n) =>
        waitUntil(async () => (await status(`http://127.0.0.1:${n.http}/readyz`)) === 200, 30_000, `node ${n.id} /readyz 200`),
      ),
    )

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
        pem: certs.pem,
        keepaliveMaxS: o.keepaliveMaxS,
        nodes: state.nodes.map((n) => ({ id: n.id, host: '127.0.0.1', mqtt: n.mqtt!, ws: n.ws!, http: n.http! })),
      }),
    )
    await checkHaproxyConfig(config)
    const haproxyLog = join(logs, 'haproxy.log')
    const haproxy: Child = { name: 'haproxy', log: haproxyLog, proc: spawnLogged(which('haproxy')!, ['-db', '-f', config], haproxyLog) }
    children.push(haproxy)
    exitWatch(haproxy)
    state.haproxy = { pid: haproxy.proc.pid!, config, bind: o.bind, mqtt_port: o.mqttPort, tls_port: o.tlsPort, wss_port: o.wssPort, stats_port: o.statsPort }
    writeState(state)
    const host = o.bind === '0.0.0.0' || o.bind === '::' ? '127.0.0.1' : o.bind
    await waitUntil(
      async () => (await serversUp(`http://${host}:${o.statsPort}/;csv`)) >= 2 * o.nodes,
      30_000,
      'HAProxy to see every node up',
      () => (haproxy.proc.exitCode !== null ? `haproxy exited at start:\n${tail(haproxyLog)}` : undefined),
    )

    // ---- ready
    state.status = 'ready'
    writeState(state)
    o.out(`culex cluster: redis   ${state.redis_url}  (AOF in ${show(redisDir)}, log ${show(redisLog)})`)
    for (const n of state.nodes) {
      o.out(`culex cluster: ${n.id.padEnd(8)} mqtt 127.0.0.1:${n.mqtt}  ws 127.0.0.1:${n.ws}/mqtt  http http://127.0.0.1:${n.http}/readyz  (pid ${n.pid}, log ${show(n.log)})`)
    }
    o.out(`culex cluster: MQTT    mqtt://${host}:${o.mqttPort}`)
    o.out(`culex cluster: MQTTS   mqtts://${host}:${o.tlsPort}  (CA ${show(certs.ca)})`)
    o.out(`culex cluster: WSS     wss://${host}:${o.wssPort}/mqtt`)
    o.out(`culex cluster: stats   http://${host}:${o.statsPort}/`)
    o.out(`culex cluster: anonymous clients ${o.allowAnonymous === true ? 'allowed' : o.allowAnonymous === false ? 'refused' : o.nodeConfig || process.env.CULEX_ALLOW_ANONYMOUS ? 'as the node config / CULEX_ALLOW_ANONYMOUS says' : 'refused (add the first user: culex user add NAME)'}; state in ${show(join(dir, 'cluster.json'))}`)
    o.out(`culex cluster ready: ${o.nodes} node${o.nodes === 1 ? '' : 's'} (stop with Ctrl-C or: culex cluster down --dir ${show(dir)})`)
  } catch (err) {
    await stop('start-up failed')
    throw err instanceof ClusterUpError ? err : new ClusterUpError((err as Error).message)
  }
  const kill = (): void => {
    for (const c of children) {
      try {
        if (c.proc.pid) process.kill(c.proc.pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    removeState(dir)
  }
  return { stop, kill, stopped }
}

function readyLine(log: string): { listeners: Record<string, string> } | undefined {
  let text: string
  try {
    text = readFileSync(log, 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"culex ready"')) continue
    try {
      return JSON.parse(line) as { listeners: Record<string, string> }
    } catch {
      /* partial */
    }
  }
  return undefined
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

/** number of servers HAProxy reports UP in the culex backends */
async function serversUp(csvUrl: string): Promise<number> {
  try {
    const res = await fetch(csvUrl, { signal: AbortSignal.timeout(2000) })
    const text = await res.text()
    const [head, ...rows] = text.replace(/^# /, '').trim().split('\n')
    const cols = head!.split(',')
    const px = cols.indexOf('pxname')
    const sv = cols.indexOf('svname')
    const st = cols.indexOf('status')
    return rows
      .map((r) => r.split(','))
      .filter((c) => (c[px] === 'culex_mqtt' || c[px] === 'culex_ws') && c[sv] !== 'BACKEND' && c[sv] !== 'FRONTEND' && c[st] === 'UP').length
  } catch {
    return 0
  }
}

/** a supervisor that died without cleaning up may have left its children: stop those still running */
export async function reapStale(s: ClusterState): Promise<void> {
  const stops: Array<Promise<void>> = []
  if (aliveAs(s.haproxy?.pid, 'haproxy')) stops.push(stopPid(s.haproxy!.pid, 3000))
  for (const n of s.nodes) if (aliveAs(n.pid, 'cli.js')) stops.push(stopPid(n.pid, 12_000))
  await Promise.all(stops)
  if (aliveAs(s.redis?.pid, 'redis-server')) await stopPid(s.redis.pid, 10_000)
  removeState(s.dir)
}

/** cluster up finds a node's listeners in its `culex ready` line, logged at info: never start a node quieter than that */
function nodeLogLevel(level: string): string {
  return ['fatal', 'error', 'warn', 'silent'].includes(level) ? 'info' : level
}
