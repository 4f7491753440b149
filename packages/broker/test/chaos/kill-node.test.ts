/**
 * Chaos: kill -9 of the node holding the most subscribers, then of a second node, under QoS 1
 * load through HAProxy; `cluster up` restarts each one (same id and ports). No acknowledged
 * message may be lost.
 */
import { describe, expect, it } from 'vitest'
import { useChaosCluster } from './lib/cluster.js'
import { Load } from './lib/load.js'
import { PROFILE } from './lib/profile.js'
import { eventLog, lossReport, summarizeLoad } from './lib/report.js'
import { sleep, waitFor } from '../helpers/wait.js'

const cluster = useChaosCluster()

describe('chaos: node kill -9 under QoS 1 load', () => {
  it(
    'kill -9 of the node holding subscribers, then of a second node: every PUBACKed message reaches its persistent subscriber',
    async () => {
      const c = cluster()
      const load = new Load({ run: `kill${Date.now()}`, publishers: PROFILE.publishers, rate: PROFILE.rate, pubUrl: c.url, subUrl: c.url })
      const log = eventLog()
      try {
        await load.connect()
        load.start()
        log.note('load started')
        const killed: string[] = []
        let unackedAtKills = 0
        for (let k = 0; k < 2; k++) {
          await sleep((PROFILE.seconds * 1000) / 3)
          const holders = await c.holders(load.clientIds('sub'))
          const [victim, subs] = [...holders].filter(([id]) => !killed.includes(id)).sort((a, b) => b[1] - a[1])[0]!
          log.note(`kill -9 ${victim} (holds ${subs} of ${load.clientIds('sub').length} subscribers)`)
          // publishes the victim may have read and not yet sent on: see the stale bound below
          unackedAtKills += load.streams.reduce((n, s) => n + s.outstanding, 0)
          await c.killNode(victim)
          killed.push(victim)
          log.note(`${victim} restarted by cluster up`)
          await waitFor(() => load.allConnected(), 30_000, 'every client connected again')
          log.note('every client connected again')
        }
        await sleep((PROFILE.seconds * 1000) / 3)
        await load.stop()
        const stale = await load.resumeSubscribers()
        const r = summarizeLoad('node kill -9 (x2)', load, log.events, { stale })
        expect(r.acknowledged).toBeGreaterThan(0)
        expect(r.reconnects, 'clients of the killed nodes reconnected').toBeGreaterThan(0)
        expect(r.lost, lossReport(r)).toBe(0)
        // QoS 1 may repeat a message after a failure, but a delivered one must leave the session's
        // queue. Known gap: a node killed between queueing a publish for the persistent sessions and
        // sending it on (Aedes' enqueueOffline, then emitPacket) leaves it in an online session's
        // queue; its publisher sends it again (no PUBACK came), the subscriber gets that copy live and
        // the queued one at its next resume. At most one per publish unacknowledged at a kill.
        expect(stale, `messages delivered during the run came again on a later resume (${unackedAtKills} publishes were unacknowledged at the kills)`).toBeLessThanOrEqual(unackedAtKills)
      } finally {
        await load.close()
      }
    },
    PROFILE.timeoutMs,
  )
})
