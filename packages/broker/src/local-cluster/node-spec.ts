/**
 * One Culex node of `culex cluster up`, as the supervisor starts and restarts it: port 0 at the
 * first start, then the same ports at every restart (HAProxy's config names them), found in the
 * node's `culex ready` log line; ready once its /readyz answers 200.
 */
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileSize, spawnLogged, waitUntil } from './procs.js'
import { httpStatus, readyLine, tail } from './probe.js'
import { writeState, type ClusterState } from './state.js'
import type { SupervisedSpec } from './supervisor.js'

export interface NodeSpecOptions {
  id: string
  /** the built CLI the node runs (`culex start`) */
  cli: string
  logs: string
  state: ClusterState
  /** the node's Redis flags: --redis-url ... or the Sentinel ones */
  redisFlags: () => string[]
  nodeConfig?: string
  keepaliveMaxS: number
  logLevel: string
  drainMs: number
  allowAnonymous?: boolean
  env: NodeJS.ProcessEnv
}

/** adds the node to `state.nodes` and returns what the supervisor needs to run it */
export function nodeSpec(o: NodeSpecOptions): SupervisedSpec {
  const { id, state } = o
  const log = join(o.logs, `${id}.log`)
  writeFileSync(log, '')
  state.nodes.push({ id, pid: 0, log, restarts: 0 })
  const entry = (): ClusterState['nodes'][number] => state.nodes.find((n) => n.id === id)!
  let logFrom = 0
  return {
    name: `node ${id}`,
    log,
    spawn: () => {
      const n = entry()
      logFrom = fileSize(log)
      const args = [
        o.cli, 'start',
        ...(o.nodeConfig ? ['--config', resolve(o.nodeConfig)] : []),
        ...o.redisFlags(), '--node-id', id, '--host', '127.0.0.1',
        '--mqtt-port', String(n.mqtt ?? 0), '--ws-port', String(n.ws ?? 0), '--http-port', String(n.http ?? 0),
        '--trusted-proxies', '127.0.0.1', '--keepalive-max-s', String(o.keepaliveMaxS), '--log-level', nodeLogLevel(o.logLevel),
        '--drain-ms', String(o.drainMs),
        ...(o.allowAnonymous !== undefined ? ['--allow-anonymous', String(o.allowAnonymous)] : []),
      ]
      return spawnLogged(process.execPath, args, log, o.env)
    },
    ready: async (proc) => {
      let ready: { listeners: Record<string, string> } | undefined
      await waitUntil(
        () => (ready = readyLine(log, logFrom)) !== undefined,
        30_000,
        `node ${id} to start`,
        () => (proc.exitCode !== null ? `node ${id} exited at start:\n${tail(log)}` : undefined),
      )
      const port = (s: string | undefined): number => Number(/:(\d+)/.exec(s ?? '')?.[1])
      Object.assign(entry(), { mqtt: port(ready!.listeners.mqtt), ws: port(ready!.listeners.ws), http: port(ready!.listeners.http) })
      writeState(state)
      await waitUntil(async () => (await httpStatus(`http://127.0.0.1:${entry().http}/readyz`)) === 200, 30_000, `node ${id} /readyz 200`, () =>
        proc.exitCode !== null ? `node ${id} exited at start:\n${tail(log)}` : undefined,
      )
    },
  }
}

/** cluster up finds a node's listeners in its `culex ready` line, logged at info: never start a node quieter than that */
function nodeLogLevel(level: string): string {
  return ['fatal', 'error', 'warn', 'silent'].includes(level) ? 'info' : level
}
