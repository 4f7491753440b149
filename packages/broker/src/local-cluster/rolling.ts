/**
 * Rolling restart of a local cluster's nodes, run by the `culex cluster up` supervisor (which owns
 * the node processes; `culex cluster restart` asks it over the control socket, control.ts).
 * One node at a time:
 *   1. SIGTERM: the node answers /readyz 503 at once and keeps its clients for `drain_ms`
 *      (main.ts), so HAProxy's health checks take it out and new clients go to the others;
 *   2. wait until HAProxy reports the server down in every backend;
 *   3. the node disconnects its clients (they reconnect through HAProxy to the other nodes) and
 *      exits; SIGKILL if it outlives its grace period;
 *   4. start it again (same id and ports), wait for /readyz 200 and for HAProxy to see it up;
 *   5. next node.
 * The node is `held` meanwhile, so the supervisor does not start it a second time on its exit.
 */
import { stopPid, waitUntil } from './procs.js'
import type { Supervised } from './supervisor.js'

export interface RollingOptions {
  nodes: Array<{ id: string; sup: Supervised }>
  /** HAProxy's state of a server in the culex backends, e.g. ['UP', 'UP'] (one per backend) */
  haproxyStates(id: string): Promise<string[]>
  /** the node's drain_ms + grace_period_ms: how long it may take to exit after SIGTERM */
  exitWithinMs: number
  /** how long HAProxy may take to see a node down (drain) or up again */
  haproxyWithinMs: number
  stopping(): boolean
  progress(line: string): void
}

export async function rollingRestart(o: RollingOptions): Promise<void> {
  const t0 = Date.now()
  for (const [i, { id, sup }] of o.nodes.entries()) {
    if (o.stopping()) throw new Error('the cluster is stopping')
    const step = `[${i + 1}/${o.nodes.length}] ${id}`
    sup.held = true
    sup.cancel()
    try {
      const t = Date.now()
      if (sup.running) {
        const pid = sup.pid!
        o.progress(`${step}: draining (SIGTERM to pid ${pid}: /readyz 503, clients kept until HAProxy stops sending new ones)`)
        process.kill(pid, 'SIGTERM')
        await waitUntil(
          async () => (await o.haproxyStates(id)).every((s) => !s.startsWith('UP')),
          o.haproxyWithinMs,
          `HAProxy to take ${id} out`,
          () => (sup.running ? undefined : `${id} exited before HAProxy took it out`),
        ).then(
          () => o.progress(`${step}: HAProxy sends it no new clients (${Date.now() - t} ms); stopping`),
          (err: Error) => o.progress(`${step}: ${err.message}; stopping anyway`),
        )
        // no second SIGTERM: the node is draining and closing already (a second one used to kill it mid-drain)
        await stopPid(pid, o.exitWithinMs, null)
      } else {
        o.progress(`${step}: not running`)
      }
      const t1 = Date.now()
      await sup.start()
      await waitUntil(async () => (await o.haproxyStates(id)).every((s) => s.startsWith('UP')), o.haproxyWithinMs, `HAProxy to see ${id} up`)
      o.progress(`${step}: back (pid ${sup.pid}, ready and up in HAProxy ${Date.now() - t1} ms after the start, ${Date.now() - t} ms out of service)`)
    } finally {
      sup.resume()
    }
  }
  o.progress(`rolling restart done: ${o.nodes.length} node${o.nodes.length === 1 ? '' : 's'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}
