/**
 * When the cluster bus sends a batch (bus.ts, issue 15: a batch must not wait longer than one
 * event-loop turn). A QoS 1 publish reaches the bus in the check phase (Aedes publishes it in the
 * setImmediate after its PUBACK write), and a setImmediate set there runs only in the next turn,
 * after that turn's poll phase has read and parsed the next chunks of every publisher. The bus
 * is told how many QoS 1 publishes follow (`expect`, one per held PUBACK,
 * broker/puback-after-publish.ts) and sends the batch once they are in it.
 *
 * Here each turn is laid out as Aedes lays it out: `expect` in one phase, each publish in an
 * immediate of its own, and a probe in an immediate after them, in the same check phase. The
 * bus runs over a real redis-server; what it PUBLISHes on its channel is recorded.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createClusterBus, type ClusterBus } from '../../src/cluster/bus.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'
import { decodeBatch } from '../../src/cluster/bus-decode.js'
import { killAll, startRedis } from '../helpers/cluster-procs.js'

const CHANNEL = 'bus-batching'
let links: Redis[] = []
let bus: ClusterBus
const sent: Buffer[] = []

beforeAll(async () => {
  const redis = await startRedis()
  links = [new Redis(redis.url), new Redis(redis.url), new Redis(redis.url)]
  const [sub, pub, control] = links as [Redis, Redis, Redis]
  await Promise.all(links.map((l) => (l.status === 'ready' ? undefined : new Promise((r) => l.once('ready', r)))))
  // what the bus hands Redis on its channel, in order
  const publish = pub.publish.bind(pub) as (ch: string, m: Buffer | string) => Promise<number>
  pub.publish = ((ch: string, m: Buffer | string) => {
    // the shared bus channel, or the bus' own once it has heard the presence channel 1.5 s (bus-channels.ts)
    if (ch === CHANNEL || ch.startsWith(`${CHANNEL}:n:`)) sent.push(m as Buffer)
    return publish(ch, m)
  }) as typeof pub.publish
  bus = createClusterBus({ sub, pub, control, channel: CHANNEL, onError: (err) => expect.unreachable(err.message) })
})
afterAll(async () => {
  await new Promise<void>((r) => bus.close(() => r()))
  for (const l of links) l.disconnect()
  await killAll()
})

const packet = (n: number): BusPacket => ({ cmd: 'publish', brokerId: 'n', brokerCounter: n, topic: `t/${n}`, payload: Buffer.from([n]), qos: 1, retain: false, dup: false })

/** in one turn: `held` PUBACKs held (timers phase), `publishes` publishes (one immediate each), then the probe */
function turn(held: number, publishes: number[]): Promise<{ batchesAtProbe: number[][]; done: Promise<unknown> }> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const callbacks: Promise<unknown>[] = []
      for (let i = 0; i < held; i++) bus.expect()
      for (const n of publishes) {
        setImmediate(() => {
          callbacks.push(new Promise<void>((ok, fail) => bus.emit(packet(n), (err?: Error | null) => (err ? fail(err) : ok()))))
        })
      }
      setImmediate(() => resolve({ batchesAtProbe: sent.map((b) => decodeBatch(b).packets.map((p) => p.brokerCounter as number)), done: Promise.all(callbacks) }))
    }, 0)
  })
}

it('QoS 1 publishes whose PUBACKs were held go out in one batch in the turn they were published, not after the next poll phase', async () => {
  sent.length = 0
  const { batchesAtProbe, done } = await turn(3, [1, 2, 3])
  expect(batchesAtProbe).toEqual([[1, 2, 3]])
  await done
})

it('a held PUBACK whose publish never comes holds nothing past the next turn, and the turn after batches in its own turn again', async () => {
  sent.length = 0
  // two held, one published (the other failed before it reached the bus)
  const first = await turn(2, [4])
  expect(first.batchesAtProbe).toEqual([])
  await first.done
  expect(sent.map((b) => decodeBatch(b).packets.map((p) => p.brokerCounter))).toEqual([[4]])
  sent.length = 0
  const second = await turn(2, [5, 6])
  expect(second.batchesAtProbe).toEqual([[5, 6]])
  await second.done
})
