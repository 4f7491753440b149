/** `culex cluster down`: stop the cluster `culex cluster up` runs from a folder. */
import { resolve } from 'node:path'
import { reapStale } from './up.js'
import { alive, readState } from './state.js'
import { waitExit } from './procs.js'

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
