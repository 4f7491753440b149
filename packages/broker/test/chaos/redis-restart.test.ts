/**
 * Chaos: redis-server killed with kill -9 under QoS 1 load and restarted by `cluster up` with the
 * same arguments (AOF replayed) about 3 s later. Publishers on one node, their subscribers on another, so every
 * message crosses the cluster bus. No acknowledged message may be lost (issue 8, bug 2).
 */
import { describe, expect, it } from 'vitest'
import { useChaosCluster } from './lib/cluster.js'
import { Load } from './lib/load.js'
import { PROFILE } from './lib/profile.js'
import { eventLog, lossReport, summarizeLoad } from './lib/report.js'
import { sleep, waitFor } from '../helpers/wait.js'

// Redis comes back ~3 s after its death, as in the report
const cluster = useChaosCluster(['--restart-delay-ms', '2500'])

describe('chaos: Redis kill -9 and restart under QoS 1 load', () => {
  it(
    'publishers on one node, subscribers on another: every PUBACKed message reaches its persistent subscriber',
    async () => {
      const c = cluster()
      const [pubNode, subNode] = c.nodeIds
      const load = new Load({
        run: `redis${Date.now()}`,
        publishers: PROFILE.publishers,
        rate: PROFILE.rate,
        pubUrl: c.nodeUrl(pubNode!),
        subUrl: c.nodeUrl(subNode!),
      })
      const log = eventLog()
      try {
        await load.connect()
        load.start()
        log.note(`load started (publishers on ${pubNode}, subscribers on ${subNode})`)
        await sleep((PROFILE.seconds * 1000) / 2)
        log.note('kill -9 redis-server')
        await c.killRedis()
        log.note('redis-server restarted by cluster up (AOF replayed), every node ready')
        await waitFor(() => load.allConnected(), 30_000, 'every client connected')
        await sleep((PROFILE.seconds * 1000) / 2)
        await load.stop()
        const r = summarizeLoad('Redis kill -9 + restart', load, log.events)
        expect(r.acknowledged).toBeGreaterThan(0)
        expect(r.lost, lossReport(r)).toBe(0)
      } finally {
        await load.close()
      }
    },
    PROFILE.timeoutMs,
  )
})
