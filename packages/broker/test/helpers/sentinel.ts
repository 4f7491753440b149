/**
 * A real Redis high-availability topology for the tests: a primary, replicas and three
 * redis-sentinel processes on free loopback ports (config files by local-cluster/sentinel.ts,
 * the same `culex cluster up --redis-replicas` writes), with short Sentinel timings.
 */
import { Redis } from 'ioredis'
import { freePort, spawnProc, tempDir, waitFor, type Proc } from './cluster-procs.js'
import { haTopology, sentinelFlags, type HaPorts, type HaProcess } from '../../src/local-cluster/sentinel.js'
import { primaryPort, settled } from '../../src/local-cluster/ha-redis.js'
import { redisPing } from '../../src/local-cluster/procs.js'

export interface TestHa {
  ports: HaPorts
  /** the nodes' flags: --redis-sentinels ... --redis-master-name culex */
  flags: string[]
  procs: Map<string, { spec: HaProcess; proc: Proc }>
  /** the port sentinel-1 names as primary now */
  primaryPort(): Promise<number | undefined>
  /** a plain client of one redis-server */
  client(port: number): Redis
  /** is the redis-server on `port` running */
  running(port: number): boolean
  /** kill -9 the redis-server on `port` */
  kill(port: number): Promise<void>
  /** start the redis-server of `port` again with its (possibly rewritten) config file */
  restart(port: number): Promise<void>
  /** until every sentinel sees the primary, `replicas` replicas and the other sentinels */
  settled(replicas: number): Promise<void>
}

const clients: Redis[] = []

export async function startHa(o: { replicas: number; downAfterMs?: number; failoverTimeoutMs?: number }): Promise<TestHa> {
  const dir = tempDir('culex-ha-')
  const ports: HaPorts = { primary: await freePort(), replicas: [], sentinels: [] }
  for (let i = 0; i < o.replicas; i++) ports.replicas.push(await freePort())
  for (let i = 0; i < 3; i++) ports.sentinels.push(await freePort())
  const specs = haTopology(dir, ports, { downAfterMs: o.downAfterMs ?? 500, failoverTimeoutMs: o.failoverTimeoutMs ?? 20_000 })
  const procs = new Map<string, { spec: HaProcess; proc: Proc }>()
  const start = async (spec: HaProcess): Promise<void> => {
    procs.set(spec.name, { spec, proc: spawnProc(spec.bin, [spec.config]) })
    await waitFor(() => redisPing('127.0.0.1', spec.port), 10_000, `${spec.name} on ${spec.port}`)
  }
  await Promise.all(specs.map(start))
  const client = (port: number): Redis => {
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false })
    r.on('error', () => {})
    clients.push(r)
    return r
  }
  const byPort = (port: number): { spec: HaProcess; proc: Proc } => [...procs.values()].find((p) => p.spec.port === port)!
  const ha: TestHa = {
    ports,
    flags: sentinelFlags(ports),
    procs,
    primaryPort: () => primaryPort(ports),
    client,
    running: (port) => {
      const c = byPort(port).proc.child
      return c.exitCode === null && c.signalCode === null
    },
    async kill(port) {
      const p = byPort(port)
      p.proc.child.kill('SIGKILL')
      await p.proc.exited
    },
    async restart(port) {
      await start(byPort(port).spec)
    },
    async settled(replicas) {
      await waitFor(() => settled(ports, replicas), 30_000, `sentinels settled with ${replicas} replicas`)
    },
  }
  return ha
}

export function closeHaClients(): void {
  for (const c of clients.splice(0)) c.disconnect()
}
