/**
 * Why a PUBACK waits for a replica under Sentinel (issue 13) [MQTT-4.3.2-2]: both replicas lose
 * their link to the primary and cannot get it back (the primary is at maxclients), a QoS 1 message for an offline persistent session
 * is published, and the primary is killed before the replicas got it. Sentinel promotes one of
 * them, which never had the message. The node must not have acknowledged it: it holds the PUBACK
 * until a replica has the write (WAIT), and when the primary dies meanwhile it does not take the
 * answer of the WAIT that ioredis resends to the new primary (it would vouch for a write that is
 * not there): it publishes the message again itself, on the new primary, and acknowledges it once
 * a replica has that. The publisher's connection stays open through the failover (it used to be
 * closed, and every publisher reconnected and sent its whole in-flight window again: ~2.7 s and
 * ~550 duplicates per failover in `npm run chaos`). The session gets the message, and the online
 * subscribers on both nodes, which had it before the failover, do not get the copy (QoS 0 traffic
 * after it takes it out of their per-client duplicate filter, cluster/dedupe.ts, as load does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { closeHaClients, startHa, type TestHa } from '../helpers/sentinel.js'
import { metric } from '../helpers/security-node.js'

/** every string value and hash field value of the primary, joined (to find a message body) */
async function scanValues(r: import('ioredis').Redis): Promise<string> {
  const out: string[] = []
  for (const k of await r.keys('*')) {
    const t = await r.type(k)
    if (t === 'string') out.push((await r.getBuffer(k))?.toString('latin1') ?? '')
    else if (t === 'hash') out.push(...Object.values(await r.hgetall(k)))
    else if (t === 'list') out.push(...(await r.lrange(k, 0, -1)))
  }
  return out.join('\n')
}

let ha: TestHa
let node: TestNode
let peer: TestNode

beforeAll(async () => {
  ha = await startHa({ replicas: 2, downAfterMs: 500, failoverTimeoutMs: 20_000 })
  await ha.settled(2)
  // a long timeout: here the PUBACK may only leave once a replica has the message
  const start = (id: string): Promise<TestNode> => startNode(ha.flags, id, ['--redis-replicas-ack-timeout-ms', '30000', '--allow-anonymous', 'true'])
  ;[node, peer] = await Promise.all([start('durable-a'), start('durable-b')])
}, 60_000)

afterAll(async () => {
  await closeAllClients()
  closeHaClients()
  await killAll()
})

describe('Redis Sentinel: acknowledged writes on replicas', () => {
  it('a message the old primary stored but no replica had is not acknowledged before the failover, then acknowledged on the same connection, and arrives [MQTT-4.3.2-2]', async () => {
    const sess = await mqttConnect(node.url, { clientId: 'durable-sess', clean: false })
    await sess.subscribeAsync('durable/#', { qos: 1 })
    await sess.endAsync()
    // online on the publisher's node and on the other one
    const online = await Promise.all([node, peer].map((n) => mqttConnect(n.url, { clean: true })))
    await Promise.all(online.map((c) => c.subscribeAsync('durable/#', { qos: 1 })))
    const onlineGot = online.map(collect)
    const pub = await mqttConnect(node.url, { clientId: 'durable-pub', reconnectPeriod: 100 })
    await pub.publishAsync('durable/before', 'b', { qos: 1 })

    // the replicas lose their link and cannot get it back: what the primary stores now reaches neither
    const primary = ha.client(ha.ports.primary)
    const conns = ((await primary.client('LIST')) as string).trim().split('\n').length
    await primary.config('SET', 'maxclients', String(conns - 2))
    await primary.client('KILL', 'TYPE', 'replica')
    await waitFor(async () => /connected_slaves:0/.test(await primary.info('replication')), 5000, 'replicas cut off')
    let acked = false
    let closes = 0
    pub.on('close', () => closes++)
    const publishing = pub.publishAsync('durable/during', 'd', { qos: 1 }).then(() => (acked = true))
    // delivered at once (only its PUBACK waits), then more than the per-client duplicate window (32) of other messages
    await waitFor(() => onlineGot.every((got) => got.some((g) => g.topic === 'durable/during')), 10_000, 'the message on both nodes')
    for (let i = 0; i < 40; i++) void pub.publish(`durable/fill/${i}`, 'f', { qos: 0 })
    await waitFor(() => onlineGot.every((got) => got.filter((g) => g.topic.startsWith('durable/fill/')).length === 40), 10_000, 'the QoS 0 messages on both nodes')
    // the message is stored on the primary (its body is there) ...
    await waitFor(async () => (await primary.keys('*')).length > 0 && (await scanValues(primary)).includes('durable/during'), 5000, 'the write on the primary')
    await new Promise((r) => setTimeout(r, 300))
    // ... but not acknowledged, since no replica has it
    expect(acked).toBe(false)
    await ha.kill(ha.ports.primary)
    await waitFor(async () => ((await ha.primaryPort()) ?? ha.ports.primary) !== ha.ports.primary, 30_000, 'Sentinel promoted a replica')
    await publishing
    // the last message of the publisher reached both subscribers: any copy of 'during' came before it
    await pub.publishAsync('durable/after', 'a', { qos: 1 })
    await waitFor(() => onlineGot.every((got) => got.some((g) => g.topic === 'durable/after')), 10_000, 'the message after the failover on both nodes')
    for (const [i, got] of onlineGot.entries()) {
      const during = got.filter((g) => g.topic === 'durable/during').length
      expect(during, `copies of the message the failover crossed on ${i === 0 ? 'the publisher' : 'the other'}'s node [MQTT-4.3.2-1]`).toBe(1)
    }
    const back = await mqttConnect(node.url, { clientId: 'durable-sess', clean: false })
    const got = collect(back)
    await waitFor(() => got.some((g) => g.topic === 'durable/before'), 10_000, 'the session queue')
    await waitFor(() => got.some((g) => g.topic === 'durable/during'), 3000, 'the message published during the failover').catch(() => {})
    expect(got.map((g) => g.topic)).toContain('durable/during')
    // the node held the ack of the publish the failover crossed and sent it on the same connection
    expect(closes).toBe(0)
    expect(await metric(node.http, 'culex_replica_ack_resent_total')).toBeGreaterThanOrEqual(1)
    expect(await metric(node.http, 'culex_replica_ack_failed_total')).toBe(0)
    expect(await metric(peer.http, 'culex_replica_ack_copies_dropped_total'), 'the copy the other node dropped').toBeGreaterThanOrEqual(1)
  }, 60_000)
})
