/**
 * Rolling upgrade of the cluster bus (bus-codec.ts, bus-delivery.ts): a node of the previous
 * release reads batch versions 1 and 2 only and refuses a version 3 batch whole, so packets that
 * need version 3 (binary MQTT 5 properties) go out in batches of their own and every other packet
 * still reaches it. A BusDelivery over a real redis-server; the batches as Redis hands them out.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { BusDelivery } from '../../src/cluster/bus-delivery.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'
import { decodeBatch } from '../../src/cluster/bus-decode.js'
import { killAll, startRedis, waitFor } from '../helpers/cluster-procs.js'

let pub: Redis
let sub: Redis

beforeAll(async () => {
  const redis = await startRedis()
  pub = new Redis(redis.url)
  sub = new Redis(redis.url)
})
afterAll(async () => {
  pub.disconnect()
  sub.disconnect()
  await killAll()
})

const plain = (n: number): BusPacket => ({ cmd: 'publish', brokerId: 'n', brokerCounter: n, topic: `t/${n}`, payload: Buffer.from([n]), qos: 1, retain: false, dup: false })
const withCorrelation = (n: number): BusPacket => ({ ...plain(n), properties: { correlationData: Buffer.from([0, 255, n]), userProperties: { k: ['a', 'b'] } } })
const withoutBinary = (n: number): BusPacket => ({ ...plain(n), properties: { contentType: 'text/plain', userProperties: { k: 'v' } }, messageExpiry: 1_796_000_000_000 })

it('a batch with binary MQTT 5 properties is split: those packets in version 3 batches, the others in version 2 ones a previous release reads, in order, one callback', async () => {
  const seen: Buffer[] = []
  sub.on('messageBuffer', (ch: Buffer, m: Buffer) => {
    if (ch.toString() === 'bus-v') seen.push(m)
  })
  await sub.subscribe('bus-v')
  // on the shared channel, where a node of the previous release listens (bus-channels.ts)
  const delivery = new BusDelivery({ pub, sub, channel: 'bus-v', origin: 'o1', sharedOnly: true, onError: (err) => expect.unreachable(err.message) })
  try {
    const sent = [plain(1), withoutBinary(2), withCorrelation(3), withCorrelation(4), plain(5)]
    let calls = 0
    await new Promise<void>((resolve, reject) =>
      delivery.send(sent, (err) => {
        calls++
        if (err) reject(err)
        else resolve()
      }),
    )
    await waitFor(() => seen.length === 3, 5000, 'three batches')
    expect(calls).toBe(1)
    expect(seen.map((b) => b[0])).toEqual([2, 3, 2])
    const batches = seen.map(decodeBatch)
    expect(batches.map((b) => b.seq)).toEqual([1, 2, 3])
    expect(batches.flatMap((b) => b.packets)).toEqual(sent)
    // what a node of the previous release gets: every packet but those with binary properties
    expect(batches.filter((_, i) => seen[i]![0] !== 3).flatMap((b) => b.packets.map((p) => p.brokerCounter))).toEqual([1, 2, 5])

    // no binary: one version 2 batch, as before
    seen.length = 0
    await new Promise<void>((resolve) => delivery.send([plain(6), withoutBinary(7)], () => resolve()))
    await waitFor(() => seen.length === 1, 5000, 'one batch')
    expect(seen[0]![0]).toBe(2)
  } finally {
    delivery.close()
  }
})
