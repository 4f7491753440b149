/**
 * A shared subscription's SUBACK and the QoS 1 messages in flight as the member joins: every
 * message whose PUBACK reaches its publisher after the member's SUBACK reaches the member
 * (SUBACK [MQTT-3.8.4-1] once the subscription is in force on every node; v5 4.8.2: each message
 * goes to one member of the group). The message picked (with no member yet) on the publisher's
 * node just before the join used to have its PUBACK leave after the SUBACK when that node was
 * slow to finish it (a peer under pressure, machine load): acknowledged after the SUBACK, never
 * delivered. The window is made wide with the cluster bus' real pressure signal
 * (helpers/join-race.ts). Two real nodes on one real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw } from '../helpers/raw-mqtt.js'
import { DelayProxy } from '../helpers/delay-proxy.js'
import { joinDuringHeldPuback, PeerPressure, publisher, subscriber } from '../helpers/join-race.js'

/** dead 3 s after the last heartbeat: no false death on a loaded 2-core machine */
const HB = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
const ROUNDS = 3
const GUARD_ROUNDS = 20
/** below the bus' input lag threshold (100 ms, cluster/bus.ts): the node does not signal pressure */
const SUB_DELAY_MS = 20

let nodes: TestNode[]
let pressure: PeerPressure
/** node A reaches Redis through it: its subscriber link can be made slow */
let proxy: DelayProxy

beforeAll(async () => {
  const redis = await startRedis()
  pressure = new PeerPressure(redis.port)
  proxy = new DelayProxy(redis.port, 'culex-jo-a-sub')
  await proxy.start()
  nodes = await Promise.all([startNode(proxy.url, 'jo-a', [...HB, '--log-level', 'info']), startNode(redis.url, 'jo-b', [...HB, '--log-level', 'info'])])
})

afterAll(async () => {
  await pressure.close()
  await proxy.close()
  await closeRaw()
  await killAll()
})

async function rounds(pubNode: TestNode, memberNode: TestNode, tag: string): Promise<void> {
  const pub = await publisher(pubNode.mqtt, `${tag}-pub`)
  // an ordinary subscriber on the publisher's node: once it has a message, a member was picked for it
  const watcher = await subscriber(pubNode.mqtt, `${tag}-watch`)
  await watcher.raw.until(() => true)
  let conclusive = 0
  for (let r = 0; r < ROUNDS; r++) {
    const topic = `jo/${tag}/${r}`
    watcher.raw.send({ cmd: 'subscribe', messageId: r + 1, subscriptions: [{ topic, qos: 1 }] })
    await watcher.raw.until(() => watcher.subackAt.has(r + 1), 5000, 'watcher SUBACK')
    const member = await subscriber(memberNode.mqtt, `${tag}-member-${r}`)
    // the group's first member each round
    const res = await joinDuringHeldPuback({ pressure, pub, watcher, member, topic, filter: `$share/g${r}/${topic}`, tag: `${tag}-${r}` })
    // the SUBACK waits for every node's acknowledgement of the join at most 2 s (then it goes,
    // with a warning: the next test), which a machine at load 15+ can take: such a round says nothing
    const timedOut = memberNode.logs().some((l) => l.msg === 'shared subscription not acknowledged by every node in time' && String(l.group).includes(topic))
    if (timedOut) console.log(`round ${r}: the join was not acknowledged by every node within 2 s (machine load); missing ${JSON.stringify(res.missing)}`)
    else {
      conclusive++
      expect(res.missing, `round ${r}: acknowledged after the SUBACK, never delivered`).toEqual([])
    }
    // the messages published after the SUBACK are among them: the check is not empty
    expect(res.late.length).toBeGreaterThanOrEqual(5)
    expect(res.subackBeforePuback).toBe(false)
    await member.raw.drop()
  }
  expect(conclusive, 'rounds whose join every node acknowledged in time').toBeGreaterThan(0)
}

describe('shared subscriptions: the SUBACK of a group\'s first member and the messages in flight [MQTT-3.8.4-1] (v5 4.8.2)', () => {
  it('member on another node than the publisher: its SUBACK leaves after the PUBACK of the message picked without it', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    await rounds(a, b, 'x')
  })

  it('member on the publisher\'s node: the same', async () => {
    const [a] = nodes as [TestNode, TestNode]
    await rounds(a, a, 's')
  })

  it('a SUBACK does not wait for ever on a node that holds its PUBACKs: sent after the 2 s bound, with a warning', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const pub = await publisher(a.mqtt, 'to-pub')
    const watcher = await subscriber(a.mqtt, 'to-watch')
    watcher.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'jo/to', qos: 1 }] })
    await watcher.raw.until(() => watcher.subackAt.has(1), 5000, 'watcher SUBACK')
    const member = await subscriber(b.mqtt, 'to-member')
    // the pressure lasts until the SUBACK is there (10 s at most)
    const res = await joinDuringHeldPuback({ pressure, pub, watcher, member, topic: 'jo/to', filter: '$share/gto/jo/to', tag: 'to', holdMs: 10_000, settleMs: 200 })
    expect(res.subackBeforePuback).toBe(true)
    expect(b.logs().some((l) => l.msg === 'shared subscription not acknowledged by every node in time')).toBe(true)
  })

  it(`a group's first member on another node than the publisher's, which hears of joins ${SUB_DELAY_MS} ms late: every message published from the SUBACK's parse callback reaches it (${GUARD_ROUNDS} rounds)`, async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    // the SUBACK waits for the publisher's node to acknowledge the join (redis-store.ts)
    proxy.delayMs = SUB_DELAY_MS
    onTestFinished(() => void (proxy.delayMs = 0))
    const pub = await publisher(a.mqtt, 'gr-pub')
    const member = await subscriber(b.mqtt, 'gr-member')
    const sent: string[] = []
    for (let r = 0; r < GUARD_ROUNDS; r++) {
      const topic = `jo/gr/${r}`
      const payloads = Array.from({ length: 5 }, (_, i) => `gr-${r}-${i}`)
      member.onSuback = (id) => {
        if (id === r + 1) for (const p of payloads) pub.publish(topic, p)
      }
      member.raw.send({ cmd: 'subscribe', messageId: r + 1, subscriptions: [{ topic: `$share/gr${r}/${topic}`, qos: 1 }] })
      await pub.acked(payloads, `round ${r} PUBACKs`)
      sent.push(...payloads)
    }
    await waitFor(() => sent.every((p) => member.got().has(p)), 10_000, 'every message at the member').catch(() => {})
    expect(sent.filter((p) => !member.got().has(p))).toEqual([])
  })

  it('a member leaving (UNSUBSCRIBE) on another node than the publisher while QoS 1 messages flow: every acknowledged message reaches a member; one picked for it after its UNSUBACK goes to the other', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const leaving = await subscriber(b.mqtt, 'lv-leaving')
    const staying = await subscriber(a.mqtt, 'lv-staying')
    for (const m of [leaving, staying]) {
      m.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/lv/jo/lv', qos: 1 }] })
      await m.raw.until(() => m.subackAt.has(1), 5000, 'SUBACK')
    }
    const pub = await publisher(a.mqtt, 'lv-pub')
    let n = 0
    let running = true
    pub.onPuback = () => running && pub.publish('jo/lv', `lv-${n++}`)
    for (let i = 0; i < 10; i++) pub.publish('jo/lv', `lv-${n++}`)
    await pub.raw.until(() => pub.ackedAt.size >= 200, 15_000, 'messages flowing')
    leaving.raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['$share/lv/jo/lv'] })
    await leaving.raw.until(() => leaving.unsubackAt.has(2), 5000, 'UNSUBACK')
    const mark = pub.ackedAt.size
    await pub.raw.until(() => pub.ackedAt.size >= mark + 300, 15_000, 'messages acknowledged after the UNSUBACK')
    running = false
    await pub.raw.until(() => pub.inflight.size === 0, 10_000, 'the last PUBACKs')
    const acked = [...pub.ackedAt.keys()]
    const got = (): Set<string> => new Set([...leaving.got(), ...staying.got()])
    await waitFor(() => acked.every((p) => got().has(p)), 10_000, 'every acknowledged message at a member').catch(() => {})
    expect(acked.filter((p) => !got().has(p))).toEqual([])
    // the leaving member had its share before it left, the other one everything after
    expect(leaving.got().size).toBeGreaterThan(0)
  })
})
