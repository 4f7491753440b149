/**
 * The PUBACKs a cluster bus batch releases leave when the batch's callbacks have run, not at the
 * end of the event-loop turn (broker/puback-after-publish.ts releaseTogether, issue 15). A batch
 * is done in the poll phase that reads Redis' reply (or a peer's progress line); a client socket
 * written there is corked until the turn's check phase (listeners/write-batching.ts), after
 * whatever else that poll phase reads and runs: 0.2-0.4 ms of every publisher's cycle across
 * nodes (docs/performance.md). Here that rest of the turn is made long on purpose (a microtask
 * queued from the `publish` event, which Aedes emits within the batch's callbacks, keeps the
 * node busy for BUSY_MS), and a publisher in another process times its PUBACK: it must not wait
 * for the node to finish that work. The PUBACK still leaves only after the publish completed
 * [MQTT-4.3.2-2] (test/cluster/puback.test.ts).
 */
import { execFile } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startTestNode } from '../helpers/node.js'
import { killAll, startRedis, REPO_ROOT } from '../helpers/cluster-procs.js'

const BUSY_MS = 1500
let node: CulexNode

beforeAll(async () => {
  const redis = await startRedis()
  node = await startTestNode({ redis_url: redis.url, node_id: 'rel-a', allow_anonymous: true })
})
afterAll(async () => {
  await node?.close()
  await killAll()
})

/** a QoS 1 publish from another process: ms from its PUBLISH to its PUBACK */
function timedPublish(url: string): Promise<number> {
  const script = `
    const mqtt = require('mqtt')
    const c = mqtt.connect(process.argv[1], { clientId: 'rel-pub', reconnectPeriod: 0 })
    c.on('connect', () => {
      const t0 = performance.now()
      c.publish('rel/t', 'x', { qos: 1 }, (err) => {
        process.stdout.write(String(err ? -1 : performance.now() - t0))
        c.end(true)
      })
    })`
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', script, url], { cwd: REPO_ROOT, timeout: 20_000 }, (err, out) => (err ? reject(err) : resolve(Number(out)))),
  )
}

it('[MQTT-4.3.2-2] a PUBACK released by a bus batch leaves before the rest of the event-loop turn runs', async () => {
  node.broker.on('publish', (packet: { topic: string }) => {
    if (packet.topic !== 'rel/t') return
    // the rest of the turn: after the batch's callbacks, before the turn's check phase
    queueMicrotask(() => {
      const until = Date.now() + BUSY_MS
      while (Date.now() < until) {
        // busy
      }
    })
  })
  const ms = await timedPublish(`mqtt://127.0.0.1:${node.ports.mqtt}`)
  expect(ms).toBeGreaterThan(0)
  // before: the PUBACK left after the busy part, BUSY_MS and more
  expect(ms).toBeLessThan(BUSY_MS * 0.6)
}, 30_000)
