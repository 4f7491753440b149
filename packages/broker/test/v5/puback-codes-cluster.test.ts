/**
 * PUBACK 0x10 No matching subscribers across a cluster of two nodes over a real redis-server
 * (broker/no-subscribers.ts, cluster/interest.ts): a publisher on A gets 0x10 only while no client
 * on either node holds a matching subscription (clean session, QoS 0, `$share` member), and 0x00
 * (with the message delivered on B) once one does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { waitFor } from '../helpers/node.js'

let a: TestNode
let b: TestNode
let pub: Raw
let nextId = 1
let redisUrl: string

beforeAll(async () => {
  const redis = await startRedis()
  redisUrl = redis.url
  ;[a, b] = await Promise.all([startNode(redis.url, 'pcc-a'), startNode(redis.url, 'pcc-b')])
  pub = (await rawClient(a.mqtt, { clientId: 'pcc-pub', protocolVersion: 5 })).raw
})
afterAll(async () => {
  await closeRaw()
  await killAll()
})

/** publish a QoS 1 message on A; its PUBACK's reason code */
async function publishOnA(topic: string, payload = 'x'): Promise<number> {
  const messageId = nextId++
  pub.send({ cmd: 'publish', topic, payload, qos: 1, messageId })
  await pub.until((ps) => ps.some((p) => p.cmd === 'puback' && p.messageId === messageId), 5000, `PUBACK ${messageId}`)
  return pub.packets.find((p) => p.cmd === 'puback' && p.messageId === messageId)!.reasonCode ?? 0
}

/** publish on A until the PUBACK says `code` (another node's subscription change reaches A a Redis round trip after its SUBACK) */
async function untilCode(topic: string, code: number): Promise<void> {
  await waitFor(async () => (await publishOnA(topic)) === code, 10_000, `PUBACK 0x${code.toString(16)} for ${topic}`)
}

describe('0x10 No matching subscribers across nodes (v5, §3.4.2.1)', () => {
  it('no subscriber on either node: 0x10; a clean QoS 0 subscriber on B: 0x00 and the message reaches it; gone again: 0x10', async () => {
    expect(await publishOnA('pcc/t')).toBe(0x10)
    const { raw: sub } = await rawClient(b.mqtt, { clientId: 'pcc-sub', protocolVersion: 5 })
    await rawSubscribe(sub, 'pcc/+', 0)
    await untilCode('pcc/t', 0)
    expect(await publishOnA('pcc/t', 'seen')).toBe(0)
    await sub.until((ps) => ps.some((p) => p.cmd === 'publish' && p.payload.toString() === 'seen'), 5000, 'the message on B')
    sub.send({ cmd: 'disconnect' })
    await untilCode('pcc/t', 0x10)
  })

  it('with other filters held on B all along, the code for one topic still follows B\'s subscriptions to it (no answer kept past a change)', async () => {
    const { raw: other } = await rawClient(b.mqtt, { clientId: 'pcc-other', protocolVersion: 5 })
    await rawSubscribe(other, 'pcc-elsewhere/#', 0)
    await waitFor(async () => (await publishOnA('pcc-elsewhere/x')) === 0, 10_000, 'B\'s filter known on A')
    expect([await publishOnA('pcc/kept'), await publishOnA('pcc/kept')]).toEqual([0x10, 0x10])
    const { raw: sub } = await rawClient(b.mqtt, { clientId: 'pcc-kept', protocolVersion: 5 })
    await rawSubscribe(sub, 'pcc/kept', 0)
    await untilCode('pcc/kept', 0)
    sub.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['pcc/kept'] })
    await untilCode('pcc/kept', 0x10)
  })

  it('a $share member on B counts: 0x00', async () => {
    expect(await publishOnA('pcc/shared')).toBe(0x10)
    const { raw: member } = await rawClient(b.mqtt, { clientId: 'pcc-member', protocolVersion: 5 })
    await rawSubscribe(member, '$share/g/pcc/shared', 1)
    await untilCode('pcc/shared', 0)
  })

  it('a node started later knows the subscriptions already held on the others (loaded from Redis)', async () => {
    const { raw: sub } = await rawClient(b.mqtt, { clientId: 'pcc-early', protocolVersion: 5 })
    await rawSubscribe(sub, 'pcc/early', 0)
    await untilCode('pcc/early', 0)
    const c = await startNode(redisUrl, 'pcc-c')
    const { raw } = await rawClient(c.mqtt, { clientId: 'pcc-pub-c', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'pcc/early', payload: 'x', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'pcc/nobody', payload: 'x', qos: 1, messageId: 2 })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === 2, 5000, 'two PUBACKs')
    expect(raw.packets.filter((p) => p.cmd === 'puback').map((p) => p.reasonCode ?? 0)).toEqual([0, 0x10])
  })
  it('a node that starts later and keeps no filter set (puback_no_subscribers false): no 0x10 from A while it is live, and its subscriber gets the message', async () => {
    expect(await publishOnA('pcc/late')).toBe(0x10)
    const d = await startNode(redisUrl, 'pcc-d', ['--puback-no-subscribers', 'false'])
    const { raw: sub } = await rawClient(d.mqtt, { clientId: 'pcc-late', protocolVersion: 5 })
    await rawSubscribe(sub, 'pcc/late', 0)
    // A reads the live nodes again every 2 s: D has no set, so A's view is incomplete from then on
    await untilCode('pcc/late', 0)
    expect(await publishOnA('pcc/late', 'late')).toBe(0)
    await sub.until((ps) => ps.some((p) => p.cmd === 'publish' && p.payload.toString() === 'late'), 5000, 'the message on D')
    expect(await publishOnA('pcc/nobody-anywhere')).toBe(0)
  })
})
