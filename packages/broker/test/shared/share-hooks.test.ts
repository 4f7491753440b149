/**
 * Shared subscriptions stay off the message path while no group exists anywhere in the cluster
 * (shared/message-hook.ts: the listener for every message comes on with the first group, and off
 * again a while after the last one), and a group's first member misses nothing while messages
 * flow: every QoS 1 message acknowledged to its publisher after the member's SUBACK reaches it,
 * whether it joins on another node than the publisher's or on the same one, the first time or
 * after the hook came off again. Two real nodes on one real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'

/** dead 3 s after the last heartbeat: no false death on a loaded 2-core machine */
const HB = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
const ON = 'shared subscriptions: a group exists, the message hook is on'
const OFF = 'shared subscriptions: no group any more, the message hook is off'
const WINDOW = 10

let nodes: TestNode[]

beforeAll(async () => {
  const redis: TestRedis = await startRedis()
  nodes = await Promise.all(['hk-a', 'hk-b'].map((id) => startNode(redis.url, id, [...HB, '--log-level', 'info'])))
})

afterAll(async () => {
  await closeRaw()
  await killAll()
})

const logged = (n: TestNode, msg: string): number => n.logs().filter((l) => l.msg === msg).length

/** one clock for the packets every client of this file receives, in the order they are parsed */
let tick = 0

/**
 * A publisher on `pubNode` sends QoS 1 messages `0, 1, ...`, WINDOW in flight; once 200 are
 * acknowledged, a member subscribes to `$share/<group>/<topic>` on `memberNode` (the group's
 * first member); the publisher goes on for 300 more acknowledgements. Resolves with the messages
 * acknowledged after the SUBACK reached the member and the member's connection.
 */
async function joinWhileFlowing(pubNode: TestNode, memberNode: TestNode, group: string, topic: string) {
  const ackedAt = new Map<string, number>()
  const inflight = new Map<number, string>()
  let next = 0
  let running = true
  let subackAt = Number.POSITIVE_INFINITY
  const { raw: pub } = await rawClient(pubNode.mqtt, {
    clientId: `${group}-pub`,
    onPacket: (p) => {
      if (p.cmd !== 'puback') return
      ackedAt.set(inflight.get(p.messageId as number)!, tick++)
      inflight.delete(p.messageId as number)
      if (running) send()
    },
  })
  const send = (): void => {
    const messageId = (next % 60_000) + 1
    const payload = String(next++)
    inflight.set(messageId, payload)
    pub.send({ cmd: 'publish', topic, payload, qos: 1, messageId })
  }
  for (let i = 0; i < WINDOW; i++) send()
  await pub.until(() => ackedAt.size >= 200, 15_000, 'messages flowing')
  const { raw: member } = await rawClient(memberNode.mqtt, {
    clientId: `${group}-member`,
    autoAck: true,
    onPacket: (p) => {
      if (p.cmd === 'suback') subackAt = tick++
    },
  })
  member.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/${group}/${topic}`, qos: 1 }] })
  await member.until((ps) => ps.some((p) => p.cmd === 'suback'), 10_000, 'SUBACK')
  expect(member.packets.find((p) => p.cmd === 'suback')!.granted).toEqual([1])
  const mark = ackedAt.size
  await pub.until(() => ackedAt.size >= mark + 300, 15_000, 'messages acknowledged after the SUBACK')
  running = false
  await pub.until(() => inflight.size === 0, 10_000, 'the last acknowledgements')
  const late = [...ackedAt].filter(([, t]) => t > subackAt).map(([payload]) => payload)
  const got = (): Set<string> => new Set(member.publishes().map((p) => String(p.payload)))
  try {
    await waitFor(() => late.every((p) => got().has(p)), 10_000, 'every message acknowledged after the SUBACK at the member')
  } catch (err) {
    const missing = late.filter((p) => !got().has(p))
    throw new Error(`${(err as Error).message}: ${missing.length} of ${late.length} missing, e.g. ${missing.slice(0, 10).join(' ')}`)
  }
  expect(late.length).toBeGreaterThanOrEqual(300)
  return { late, member, pub }
}

describe('shared subscriptions: the message hook while groups come and go', () => {
  it('no group: no node hooks into the message path; a first member joining on another node while QoS 1 messages flow gets every message acknowledged after its SUBACK', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    expect(logged(a, ON) + logged(b, ON)).toBe(0)
    const { member, pub } = await joinWhileFlowing(a, b, 'first', 'hk/first')
    // the member's node as it joined; the publisher's as it heard of it
    expect(logged(b, ON)).toBe(1)
    expect(logged(a, ON)).toBe(1)
    // a clean session's member leaves its group when its connection ends
    await Promise.all([member.drop(), pub.drop()])
  })

  it('after the last group is gone the hook comes off on every node; a new first member on the publisher\'s own node gets every message acknowledged after its SUBACK', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    await waitFor(() => logged(a, OFF) === 1 && logged(b, OFF) === 1, 15_000, 'the hook off on both nodes')
    const { member, pub } = await joinWhileFlowing(a, a, 'again', 'hk/again')
    expect(logged(a, ON)).toBe(2)
    await Promise.all([member.drop(), pub.drop()])
  })
})
