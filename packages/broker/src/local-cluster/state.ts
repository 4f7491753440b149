/**
 * `<dir>/cluster.json`: what `culex cluster up` started, so that later commands
 * run in the same folder (`cluster down`, `cluster status`, `culex user add`, ...)
 * find the cluster, its Redis URL and its processes without flags.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { HaEntry } from './ha-redis.js'

export const DEFAULT_DIR = '.culex'

export interface ClusterState {
  /** 'starting' until every node is ready and HAProxy sees them up */
  status: 'starting' | 'ready' | 'stopping'
  /** the `culex cluster up` supervisor */
  pid: number
  dir: string
  redis_url: string
  redis: { pid: number; port: number; dir: string }
  /** --redis-replicas: the primary, replicas and sentinels (redis_url is then redis-sentinel://...) */
  redis_ha?: { master_name: string; sentinels: number[]; procs: HaEntry[] }
  haproxy?: { pid: number; config: string; bind: string; mqtt_port: number; tls_port: number; wss_port: number; stats_port: number; api_port?: number }
  /** pid: the node's current process (the supervisor restarts a node that dies); restarts: how often it did */
  nodes: Array<{ id: string; pid: number; mqtt?: number; ws?: number; http?: number; log: string; restarts?: number }>
  certs?: { ca: string; pem: string }
  /** where the admin token of the API and dashboard is (unset: it came from CULEX_ADMIN_TOKEN) */
  admin_token_file?: string
  started: string
}

export const stateFile = (dir: string): string => join(resolve(dir), 'cluster.json')

export function readState(dir: string): ClusterState | undefined {
  const f = stateFile(dir)
  if (!existsSync(f)) return undefined
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as ClusterState
  } catch {
    return undefined
  }
}

export function writeState(state: ClusterState): void {
  const f = stateFile(state.dir)
  // redisUrl: the same URL under the name `culex user` / `culex acl` read (commands/user.ts)
  writeFileSync(`${f}.tmp`, `${JSON.stringify({ ...state, redisUrl: state.redis_url }, null, 2)}\n`)
  renameSync(`${f}.tmp`, f)
}

export function removeState(dir: string): void {
  rmSync(stateFile(dir), { force: true })
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** the Redis URL of the cluster started in dir, if one runs there */
export function clusterRedisUrl(dir = DEFAULT_DIR): string | undefined {
  const s = readState(dir)
  return s && alive(s.pid) ? s.redis_url : undefined
}
