/**
 * Ordinary (non-shared) subscriptions across nodes and the SUBACK: a client subscribes on one
 * node, and every QoS 1 message published on another node once its SUBACK is there reaches it
 * [MQTT-3.8.4-1] (the cluster bus sends every message to every node, and each node matches it
 * against its own clients' subscriptions, which Aedes adds before the SUBACK). Many rounds,
 * each on a fresh topic, the publisher pipelining its PUBLISHes the moment the SUBACK is parsed;
 * clean and persistent sessions: this holds, and is kept as a guard (a bus that sent a message
 * only to the nodes known to have a matching subscription would break it). Then the message in
 * flight as the subscription starts (helpers/join-race.ts): published, matched on the
 * subscriber's node before the SUBSCRIBE, its PUBACK held by a peer's pressure signal past the
 * SUBACK: acknowledged after the SUBACK, not delivered (known, below). Two real nodes, one real
 * redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw } from '../helpers/raw-mqtt.js'
import { joinDuringHeldPuback, PeerPressure, publisher, subscriber } from '../helpers/join-race.js'

const HB = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
const ROUNDS = 100
const PER_ROUND = 5

let nodes: TestNode[]
let pressure: PeerPressure

beforeAll(async () => {
  const redis = await startRedis()
  pressure = new PeerPressure(redis.port)
  nodes = await Promise.all(['so-a', 'so-b'].map((id) => startNode(redis.url, id, [...HB, '--log-level', 'info'])))
})

afterAll(async () => {
  await pressure.close()
  await closeRaw()
  await killAll()
})

describe('ordinary subscriptions: the SUBACK on one node and QoS 1 messages published on another [MQTT-3.8.4-1]', () => {
  for (const clean of [true, false]) {
    it(`${clean ? 'clean' : 'persistent'} sessions: ${ROUNDS} rounds, every message published on the other node once the SUBACK is parsed arrives`, async () => {
      const [a, b] = nodes as [TestNode, TestNode]
      const tag = clean ? 'c' : 'p'
      const pub = await publisher(a.mqtt, `so-${tag}-pub`)
      const member = await subscriber(b.mqtt, `so-${tag}-sub`, clean)
      const sent: string[] = []
      for (let r = 0; r < ROUNDS; r++) {
        const topic = `so/${tag}/${r}`
        const payloads = Array.from({ length: PER_ROUND }, (_, i) => `${tag}-${r}-${i}`)
        // sent from the SUBACK's own parse callback: nothing of the test's in between
        member.onSuback = (id) => {
          if (id === r + 1) for (const p of payloads) pub.publish(topic, p)
        }
        member.raw.send({ cmd: 'subscribe', messageId: r + 1, subscriptions: [{ topic, qos: 1 }] })
        await pub.acked(payloads, `round ${r} PUBACKs`)
        sent.push(...payloads)
      }
      try {
        await waitFor(() => sent.every((p) => member.got().has(p)), 10_000, 'every message at the subscriber')
      } catch {
        const missing = sent.filter((p) => !member.got().has(p))
        expect(missing, `${missing.length} of ${sent.length} never arrived`).toEqual([])
      }
    })
  }

  // Known, not fixed (see the file's note): the message was received, sent to every node and
  // matched on the subscriber's node before its SUBSCRIBE; only its PUBACK comes after the SUBACK.
  // Not a delivery the spec requires (the server had the message before the subscription), but
  // not what share-join-order.test.ts now guarantees for shared subscriptions. Fixing it means
  // holding every SUBACK for a barrier round trip through every node after Aedes added the
  // subscription to the node's matcher (seam: broker.subscribe's done, aedes-routing.ts A18).
  // it.fails: this turns red the day it is fixed, to be made an ordinary test then.
  it.fails('known: a message matched on the subscriber\'s node before its SUBSCRIBE, its PUBACK held past the SUBACK (peer pressure), is acknowledged after the SUBACK and not delivered', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const pub = await publisher(a.mqtt, 'so-h-pub')
    // an ordinary subscriber on the subscriber's node: once it has a message, that node matched it
    const watcher = await subscriber(b.mqtt, 'so-h-watch')
    watcher.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'so/held', qos: 1 }] })
    await watcher.raw.until(() => watcher.subackAt.has(1), 5000, 'watcher SUBACK')
    const member = await subscriber(b.mqtt, 'so-h-member')
    const res = await joinDuringHeldPuback({ pressure, pub, watcher, member, topic: 'so/held', filter: 'so/held', tag: 'h' })
    expect(res.missing, 'acknowledged after the SUBACK, never delivered').toEqual([])
    expect(res.late.length).toBeGreaterThanOrEqual(5)
  })
})
