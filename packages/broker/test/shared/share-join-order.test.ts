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
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw } from '../helpers/raw-mqtt.js'
import { joinDuringHeldPuback, PeerPressure, publisher, subscriber } from '../helpers/join-race.js'

/** dead 3 s after the last heartbeat: no false death on a loaded 2-core machine */
const HB = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
const ROUNDS = 3

let nodes: TestNode[]
let pressure: PeerPressure

beforeAll(async () => {
  const redis = await startRedis()
  pressure = new PeerPressure(redis.port)
  nodes = await Promise.all(['jo-a', 'jo-b'].map((id) => startNode(redis.url, id, [...HB, '--log-level', 'info'])))
})

afterAll(async () => {
  await pressure.close()
  await closeRaw()
  await killAll()
})

async function rounds(pubNode: TestNode, memberNode: TestNode, tag: string): Promise<void> {
  const pub = await publisher(pubNode.mqtt, `${tag}-pub`)
  // an ordinary subscriber on the publisher's node: once it has a message, a member was picked for it
  const watcher = await subscriber(pubNode.mqtt, `${tag}-watch`)
  await watcher.raw.until(() => true)
  for (let r = 0; r < ROUNDS; r++) {
    const topic = `jo/${tag}/${r}`
    watcher.raw.send({ cmd: 'subscribe', messageId: r + 1, subscriptions: [{ topic, qos: 1 }] })
    await watcher.raw.until(() => watcher.subackAt.has(r + 1), 5000, 'watcher SUBACK')
    const member = await subscriber(memberNode.mqtt, `${tag}-member-${r}`)
    // the group's first member each round
    const res = await joinDuringHeldPuback({ pressure, pub, watcher, member, topic, filter: `$share/g${r}/${topic}`, tag: `${tag}-${r}` })
    expect(res.missing, `round ${r}: acknowledged after the SUBACK, never delivered`).toEqual([])
    // the messages published after the SUBACK are among them: the check is not empty
    expect(res.late.length).toBeGreaterThanOrEqual(5)
    expect(res.subackBeforePuback).toBe(false)
    await member.raw.drop()
  }
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
    const res = await joinDuringHeldPuback({ pressure, pub, watcher, member, topic: 'jo/to', filter: '$share/gto/jo/to', tag: 'to', holdMs: 10_000 })
    expect(res.subackBeforePuback).toBe(true)
    expect(b.logs().some((l) => l.msg === 'shared subscription not acknowledged by every node in time')).toBe(true)
  })
})
