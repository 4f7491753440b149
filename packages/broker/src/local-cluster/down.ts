/** `culex cluster down`: stop the cluster `culex cluster up` runs from a folder. */
import { resolve } from 'node:path'
import { alive, readState, removeState, type ClusterState } from './state.js'
import { aliveAs, stopPid, waitExit } from './procs.js'

export async function clusterDown(dir: string, out: (line: string) => void): Promise<boolean> {
  const s = readState(dir)
  if (!s) {
    out(`culex cluster: no cluster state in ${resolve(dir)} (nothing to stop)`)
    return false
  }
  if (alive(s.pid) && s.pid !== process.pid) {
    process.kill(s.pid, 'SIGTERM')
    // the supervisor stops HAProxy, the nodes (grace period) and Redis, then exits
    if (await waitExit(s.pid, 40_000)) {
      out('culex cluster stopped')
      return true
    }
    process.kill(s.pid, 'SIGKILL')
  }
  // supervisor gone: stop what it left behind
  await reapStale(s)
  out('culex cluster stopped')
  return true
}

/** a supervisor that died without cleaning up may have left its children: stop those still running */
export async function reapStale(s: ClusterState): Promise<void> {
  const stops: Array<Promise<void>> = []
  if (aliveAs(s.haproxy?.pid, 'haproxy')) stops.push(stopPid(s.haproxy!.pid, 3000))
  for (const n of s.nodes) if (aliveAs(n.pid, 'cli.js')) stops.push(stopPid(n.pid, 12_000, 'SIGINT'))
  await Promise.all(stops)
  if (aliveAs(s.redis?.pid, 'redis-server')) await stopPid(s.redis.pid, 10_000)
  for (const kind of ['sentinel', 'redis'] as const) {
    await Promise.all((s.redis_ha?.procs ?? []).filter((p) => p.kind === kind && aliveAs(p.pid, 'redis')).map((p) => stopPid(p.pid, 10_000)))
  }
  removeState(s.dir)
}
