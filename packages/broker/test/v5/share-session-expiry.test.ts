/**
 * A v5 member of a `$share` group whose session expires (cluster/session-expiry.ts ends it) is
 * taken out of its groups (MQTT 5.0 §3.1.2.11.2: the session and its subscriptions are gone;
 * §4.8.2), so the group no longer counts it as an offline persistent member; messages published
 * after the expiry go to the live member, none lost. Two nodes over one redis-server, and one
 * node without Redis (Aedes' own expiry timer).
 */
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startTestNode } from '../helpers/node.js'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

const GROUP = 'sx/sx/#'
let a: TestNode
let b: TestNode
beforeAll(async () => {
  const redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'sx-a', FAST), startNode(redis.url, 'sx-b', FAST)])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

/** the group's members on `n` (its membership, from /metrics) by state */
async function members(n: { http: number }): Promise<{ online: number; offline: number }> {
  const text = await (await fetch(`http://127.0.0.1:${n.http}/metrics`)).text()
  const out = { online: 0, offline: 0 }
  for (const m of text.matchAll(/^culex_shared_members\{([^}]*)\} (\S+)$/gm)) {
    if (!m[1]!.includes(`group="${GROUP}"`)) continue
    out[m[1]!.includes('state="online"') ? 'online' : 'offline'] = Number(m[2])
  }
  return out
}
const expired = (): unknown[] => [a, b].flatMap((n) => n.logs().filter((l) => l.msg === 'session expired').map((l) => l.client))

it('a member whose session expired leaves its groups; the next messages all go to the live member (v5)', async () => {
  const m1 = await mqttConnect(a.url, { protocolVersion: 5, clientId: 'sx-m1', clean: false, properties: { sessionExpiryInterval: 1 } })
  await m1.subscribeAsync('$share/sx/sx/#', { qos: 1 })
  const m2: MqttClient = await mqttConnect(b.url, { protocolVersion: 5, clientId: 'sx-m2' })
  const got = collect(m2)
  await m2.subscribeAsync('$share/sx/sx/#', { qos: 1 })
  for (const n of [a, b]) await waitFor(async () => (await members(n)).online === 2, 5000, `${n.id} sees both members`)

  await m1.endAsync()
  for (const n of [a, b]) await waitFor(async () => (await members(n)).offline === 1, 5000, `${n.id} sees sx-m1 offline`)
  await waitFor(() => expired().includes('sx-m1'), 10_000, 'the session of sx-m1 expired')
  // its membership is gone on every node, the live member stays
  for (const n of [a, b]) await waitFor(async () => JSON.stringify(await members(n)) === JSON.stringify({ online: 1, offline: 0 }), 5000, `${n.id} sees sx-m1 gone`)

  const pub = await mqttConnect(a.url, { protocolVersion: 5, clientId: 'sx-pub' })
  const sent = Array.from({ length: 10 }, (_, i) => `m${i}`)
  for (const m of sent) await pub.publishAsync('sx/job', m, { qos: 1 })
  await waitFor(() => got.length >= sent.length, 5000, 'the messages at the live member')
  expect(got.map((g) => g.payload)).toEqual(sent)

  // sx-m1 back with a new session: no group, no message
  const back = await mqttConnect(b.url, { protocolVersion: 5, clientId: 'sx-m1', clean: false, properties: { sessionExpiryInterval: 60 } })
  const backGot = collect(back)
  await pub.publishAsync('sx/job', 'after', { qos: 1 })
  await waitFor(() => got.length > sent.length, 5000, 'the last message')
  expect(got.map((g) => g.payload)).toEqual([...sent, 'after'])
  expect(backGot).toEqual([])
})

describe('one node without Redis', () => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode({ allow_anonymous: true })
  })
  afterAll(() => node.close())

  it('a member whose session expired leaves its groups (Aedes\' expiry timer) (v5)', async () => {
    const url = `mqtt://127.0.0.1:${node.ports.mqtt}`
    const http = { http: node.ports.http }
    const m1 = await mqttConnect(url, { protocolVersion: 5, clientId: 'sx1-m1', clean: false, properties: { sessionExpiryInterval: 1 } })
    await m1.subscribeAsync('$share/sx/sx/#', { qos: 1 })
    const m2 = await mqttConnect(url, { protocolVersion: 5, clientId: 'sx1-m2' })
    const got = collect(m2)
    await m2.subscribeAsync('$share/sx/sx/#', { qos: 1 })
    await m1.endAsync()
    await waitFor(async () => (await members(http)).offline === 1, 5000, 'sx1-m1 offline')
    await waitFor(async () => JSON.stringify(await members(http)) === JSON.stringify({ online: 1, offline: 0 }), 8000, 'sx1-m1 gone after its expiry')
    const pub = await mqttConnect(url, { protocolVersion: 5, clientId: 'sx1-pub' })
    for (const m of ['a', 'b', 'c']) await pub.publishAsync('sx/job', m, { qos: 1 })
    await waitFor(() => got.length >= 3, 5000, 'the messages at the live member')
    expect(got.map((g) => g.payload)).toEqual(['a', 'b', 'c'])
  })
})
