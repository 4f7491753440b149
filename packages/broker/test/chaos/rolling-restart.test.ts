/**
 * Chaos: `culex cluster restart` (a separate process asking the `cluster up` supervisor) restarts
 * every node in turn under QoS 1 load through HAProxy: drained first, stopped, started again.
 * No acknowledged message may be lost, and no node may be started twice.
 */
import { describe, expect, it } from 'vitest'
import { useChaosCluster } from './lib/cluster.js'
import { Load } from './lib/load.js'
import { PROFILE } from './lib/profile.js'
import { eventLog, lossReport, summarizeLoad } from './lib/report.js'
import { sleep, waitFor } from '../helpers/wait.js'

const cluster = useChaosCluster()

describe('chaos: rolling restart under QoS 1 load', () => {
  it(
    'culex cluster restart of every node: every PUBACKed message reaches its persistent subscriber',
    async () => {
      const c = cluster()
      const load = new Load({ run: `roll${Date.now()}`, publishers: PROFILE.publishers, rate: PROFILE.rate, pubUrl: c.url, subUrl: c.url })
      const log = eventLog()
      const before = c.up.state().nodes
      try {
        await load.connect()
        load.start()
        log.note('load started')
        await sleep((PROFILE.seconds * 1000) / 4)
        log.note('culex cluster restart')
        const restart = c.up.cli(['cluster', 'restart', '--dir', c.up.dir])
        const { code } = await restart.exited
        log.note(`culex cluster restart exited ${code}`)
        expect(code, restart.text() + restart.err.join('')).toBe(0)
        await waitFor(() => load.allConnected(), 30_000, 'every client connected again')
        log.note('every client connected again')
        await sleep((PROFILE.seconds * 1000) / 4)
        await load.stop()
        const stale = await load.resumeSubscribers()
        const r = summarizeLoad('rolling restart (all nodes)', load, log.events, { stale })
        // every node runs a new process on its old ports, and the supervisor did not start any twice
        const after = c.up.state().nodes
        for (const [i, n] of after.entries()) {
          expect(n.pid).not.toBe(before[i]!.pid)
          expect([n.mqtt, n.http]).toEqual([before[i]!.mqtt, before[i]!.http])
          expect(n.restarts ?? 0, `${n.id} restarted as if it had died`).toBe(0)
        }
        expect(c.up.proc.text()).not.toMatch(/exited \(.*restarting in/)
        expect(r.reconnects, 'every client was moved at least once').toBeGreaterThanOrEqual(2 * PROFILE.publishers)
        expect(r.lost, lossReport(r)).toBe(0)
        // QoS 1 may repeat a message after a failure, but a delivered one must leave the session's queue
        expect(stale, 'messages delivered during the run came again on a later resume').toBe(0)
      } finally {
        await load.close()
      }
    },
    PROFILE.timeoutMs,
  )
})
