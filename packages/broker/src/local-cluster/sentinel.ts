/**
 * The high-availability Redis of a local cluster (`culex cluster up --redis-replicas N`, and the
 * tests): a primary, N replicas and three `redis-sentinel` processes (a quorum of 2), on
 * loopback ports. Every process gets a config file of its own: Sentinel rewrites them on a
 * failover (the sentinels' view of the topology, the new `replicaof` of a former primary), so a
 * process restarted with its file rejoins the topology as it is now, not as it was at start.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const MASTER_NAME = 'culex'
export const SENTINELS = 3
const QUORUM = 2

export interface HaPorts {
  primary: number
  replicas: number[]
  sentinels: number[]
}

export interface HaProcess {
  /** redis-0 (the first primary), redis-1..N (replicas), sentinel-1..3 */
  name: string
  kind: 'redis' | 'sentinel'
  port: number
  /** redis-server or redis-sentinel */
  bin: 'redis-server' | 'redis-sentinel'
  /** the config file, its only argument */
  config: string
}

export interface HaTimings {
  /** sentinel down-after-milliseconds: silence before the primary is thought down */
  downAfterMs: number
  /** sentinel failover-timeout */
  failoverTimeoutMs: number
}

/**
 * failover-timeout well above the sentinels' 2 s hello period: with 2 s, under load, a sentinel
 * that had not heard of the promotion yet turned the new primary back into a replica and the
 * nodes' links dropped again every second or so (seen in the tests)
 */
export const DEFAULT_TIMINGS: HaTimings = { downAfterMs: 2000, failoverTimeoutMs: 20_000 }

/** `<dir>/<name>.conf` of a redis-server or redis-sentinel on loopback `port`, its data in `<dir>/<name>/`; returns the file */
function writeConfig(dir: string, name: string, port: number, lines: string[]): string {
  const data = join(dir, name)
  mkdirSync(data, { recursive: true })
  const config = join(dir, `${name}.conf`)
  writeFileSync(config, [`port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir ${data}`, ...lines, ''].join('\n'))
  return config
}

/** write the config files under `dir` (nothing started); the redis-* ones first */
export function haTopology(dir: string, ports: HaPorts, t: HaTimings = DEFAULT_TIMINGS): HaProcess[] {
  const procs: HaProcess[] = []
  const redisPorts = [ports.primary, ...ports.replicas]
  redisPorts.forEach((port, i) => {
    const name = `redis-${i}`
    const config = writeConfig(dir, name, port, [
      'protected-mode yes',
      'appendonly yes',
      'appendfsync everysec',
      'save ""',
      // a replica that lost its primary still answers reads; Culex talks to the primary only
      'replica-serve-stale-data yes',
      ...(i > 0 ? [`replicaof 127.0.0.1 ${ports.primary}`] : []),
    ])
    procs.push({ name, kind: 'redis', port, bin: 'redis-server', config })
  })
  ports.sentinels.forEach((port, i) => {
    const name = `sentinel-${i + 1}`
    const config = writeConfig(dir, name, port, [
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${ports.primary} ${QUORUM}`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${t.downAfterMs}`,
      `sentinel failover-timeout ${MASTER_NAME} ${t.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
    ])
    procs.push({ name, kind: 'sentinel', port, bin: 'redis-sentinel', config })
  })
  return procs
}

/** the nodes' flags for this topology */
export function sentinelFlags(ports: HaPorts): string[] {
  return ['--redis-sentinels', ports.sentinels.map((p) => `127.0.0.1:${p}`).join(','), '--redis-master-name', MASTER_NAME]
}

/** the redis-sentinel:// form the CLI reads (cluster.json, --redis) */
export function sentinelTargetString(ports: HaPorts): string {
  return `redis-sentinel://${ports.sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`
}
