/**
 * `culex cluster up --redis-replicas N`: the Redis of the local cluster as production runs it,
 * a primary, N replicas and three redis-sentinel processes (Debian's `redis-sentinel`), every
 * one supervised like the nodes (restarted with its config file, which Sentinel keeps up to
 * date, when it dies). The nodes are pointed at the sentinels, not at a server.
 */
import { join } from 'node:path'
import { connectRedis } from '../cluster/redis-connect.js'
import { haTopology, sentinelFlags, sentinelTargetString, MASTER_NAME, SENTINELS, type HaPorts, type HaProcess, type HaTimings } from './sentinel.js'
import { freePort, redisPing, spawnLogged, waitUntil, which } from './procs.js'
import type { Supervised, SupervisedSpec } from './supervisor.js'

export interface HaEntry {
  name: string
  kind: 'redis' | 'sentinel'
  port: number
  pid: number
  config: string
  log: string
  restarts?: number
}

export interface HaRedis {
  ports: HaPorts
  /** redis-sentinel://... (cluster.json's redis_url: `culex user`, `cluster status`) */
  target: string
  /** the nodes' flags */
  flags: string[]
  procs: Array<{ spec: HaProcess; sup: Supervised; log: string }>
  /** for cluster.json */
  entries(): HaEntry[]
}

export async function startHaRedis(o: {
  dir: string
  logs: string
  replicas: number
  timings: HaTimings
  supervise: (spec: SupervisedSpec) => Supervised
}): Promise<HaRedis> {
  const missing = ['redis-server', 'redis-sentinel'].filter((b) => !which(b))
  if (missing.length > 0) throw new Error(`${missing.join(' and ')} not found on PATH. Install with:\n  sudo apt-get install -y redis-server redis-sentinel`)
  const ports: HaPorts = { primary: await freePort('127.0.0.1'), replicas: [], sentinels: [] }
  for (let i = 0; i < o.replicas; i++) ports.replicas.push(await freePort('127.0.0.1'))
  for (let i = 0; i < SENTINELS; i++) ports.sentinels.push(await freePort('127.0.0.1'))
  const procs: HaRedis['procs'] = []
  for (const spec of haTopology(o.dir, ports, o.timings)) {
    const log = join(o.logs, `${spec.name}.log`)
    const sup = o.supervise({
      name: spec.name,
      log,
      spawn: () => spawnLogged(which(spec.bin)!, [spec.config], log),
      ready: (proc) =>
        waitUntil(() => redisPing('127.0.0.1', spec.port), 15_000, spec.name, () =>
          proc.exitCode !== null ? `${spec.name} exited at start; see ${log}` : undefined,
        ),
    })
    procs.push({ spec, sup, log })
  }
  // the servers first (the sentinels look for the primary at start), then the sentinels
  for (const p of procs) await p.sup.start()
  await waitUntil(() => settled(ports, o.replicas), 60_000, `the sentinels to see the primary, ${o.replicas} replica(s) in sync and each other`)
  return {
    ports,
    target: sentinelTargetString(ports),
    flags: sentinelFlags(ports),
    procs,
    entries: () => procs.map((p) => ({ name: p.spec.name, kind: p.spec.kind, port: p.spec.port, pid: p.sup.pid ?? 0, config: p.spec.config, log: p.log, restarts: p.sup.restarts })),
  }
}

/**
 * every sentinel knows the primary, `replicas` healthy replicas and the 2 other sentinels: then
 * a failover can happen. (A replica's own link status reaches Sentinel only with its INFO every
 * 10 s; waiting for it would make every start 10 s slower, and Sentinel does not need it.)
 */
export async function settled(ports: HaPorts, replicas: number): Promise<boolean> {
  // right after a failover a sentinel can still name the old primary: all must name the same one
  const primaries = new Set<string>()
  for (const port of ports.sentinels) {
    const s = connectRedis({ kind: 'url', url: `redis://127.0.0.1:${port}` }, { failFast: true })
    s.on('error', () => {})
    try {
      const master = fields((await s.call('SENTINEL', 'master', MASTER_NAME)) as string[])
      if (master.get('flags') !== 'master' || Number(master.get('num-other-sentinels')) < SENTINELS - 1) return false
      primaries.add(`${master.get('ip')}:${master.get('port')}`)
      const reps = ((await s.call('SENTINEL', 'replicas', MASTER_NAME)) as string[][]).map(fields)
      if (reps.filter((r) => r.get('flags') === 'slave').length < replicas) return false
    } catch {
      return false
    } finally {
      s.disconnect()
    }
  }
  return primaries.size === 1
}

/** the port the sentinels hold for the primary now (the first that answers) */
export async function primaryPort(ports: HaPorts): Promise<number | undefined> {
  for (const port of ports.sentinels) {
    const s = connectRedis({ kind: 'url', url: `redis://127.0.0.1:${port}` }, { failFast: true })
    s.on('error', () => {})
    try {
      const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as string[] | null
      if (addr) return Number(addr[1])
    } catch {
      /* next */
    } finally {
      s.disconnect()
    }
  }
  return undefined
}

function fields(flat: string[]): Map<string, string> {
  const m = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!)
  return m
}
