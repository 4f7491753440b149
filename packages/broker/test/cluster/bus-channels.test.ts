/**
 * Per-node bus channels (bus-channels.ts, issue 15): a node publishes its batches on a channel of
 * its own that every other node hears through PSUBSCRIBE patterns, so it no longer reads its own
 * batches back from Redis; while a node of the previous release (here `sharedOnly`) is live,
 * every node publishes on the shared bus channel as before. Buses over a real redis-server, each
 * with its own three links, as nodes have. Every message must arrive exactly once and in order
 * per publisher [MQTT-4.3.2-2] [MQTT-4.6.0-6], across switches between the channels.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createClusterBus, type ClusterBus } from '../../src/cluster/bus.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'
import type { HeldEpisode } from '../../src/cluster/bus-delivery.js'
import { killAll, startRedis, waitFor } from '../helpers/cluster-procs.js'

const CHANNEL = 'bus-ch'
let url: string
let admin: Redis
const open: Array<{ bus: ClusterBus; links: Redis[] }> = []
const closing = new Set<ClusterBus>()

beforeAll(async () => {
  url = (await startRedis()).url
  admin = new Redis(url)
})
afterEach(async () => {
  for (const n of open.splice(0)) await closeNode(n)
})
afterAll(async () => {
  admin.disconnect()
  await killAll()
})

interface TestNode {
  bus: ClusterBus
  links: Redis[]
  /** counters of the messages received, by publisher */
  got: Map<string, number[]>
  /** batches held until every node had them (bus-delivery.ts) */
  held: HeldEpisode[]
}

/** `name`: the brokerId of what it publishes; its subscriber records the others' messages (its own are delivered locally) */
async function node(name: string, opts: { sharedOnly?: boolean } = {}): Promise<TestNode> {
  const links = [new Redis(url), new Redis(url), new Redis(url)]
  await Promise.all(links.map((l) => (l.status === 'ready' ? undefined : new Promise((r) => l.once('ready', r)))))
  const [sub, pub, control] = links as [Redis, Redis, Redis]
  // a publish of the lag probe in flight when the links are cut fails: not the bus' fault
  const bus: ClusterBus = createClusterBus({ sub, pub, control, channel: CHANNEL, sharedOnly: opts.sharedOnly, onHeld: (info) => held.push(info), onError: (err) => closing.has(bus) || expect.unreachable(err.message) })
  const got = new Map<string, number[]>()
  const held: HeldEpisode[] = []
  bus.on('t/#', (p: unknown, cb: () => void) => {
    const packet = p as BusPacket
    if (packet.brokerId === name) return cb()
    const list = got.get(packet.brokerId!) ?? []
    list.push(packet.brokerCounter!)
    got.set(packet.brokerId!, list)
    cb()
  })
  const n = { bus, links, got, held }
  open.push(n)
  return n
}

async function closeNode(n: { bus: ClusterBus; links: Redis[] }): Promise<void> {
  const i = open.indexOf(n as (typeof open)[number])
  if (i >= 0) open.splice(i, 1)
  closing.add(n.bus)
  await new Promise<void>((r) => n.bus.close(() => r()))
  for (const l of n.links) l.disconnect()
}

const packet = (from: string, n: number): BusPacket => ({ cmd: 'publish', brokerId: from, brokerCounter: n, topic: `t/${from}`, payload: Buffer.alloc(64, n), qos: 1, retain: false, dup: false })

/** `count` QoS 1 messages from `from`, `perTurn` in each event-loop turn, each emit callback awaited at the end */
async function publish(bus: ClusterBus, from: string, first: number, count: number, perTurn = 10, between?: (sent: number) => Promise<void> | void): Promise<void> {
  const done: Promise<void>[] = []
  for (let n = first; n < first + count; n += perTurn) {
    for (let k = n; k < Math.min(n + perTurn, first + count); k++) {
      done.push(new Promise<void>((ok, fail) => bus.emit(packet(from, k), (err?: Error | null) => (err ? fail(err) : ok()))))
    }
    await new Promise((r) => setImmediate(r))
    await between?.(n + perTurn - first)
  }
  await Promise.all(done)
}

const range = (first: number, count: number): number[] => Array.from({ length: count }, (_, i) => first + i)

it('two nodes on their own channels: every QoS 1 message once and in order, and no node reads its own batches back', async () => {
  const a = await node('a')
  const b = await node('b')
  // each has heard the presence channel for 1.5 s and the other said it listens on the per-node channels
  await waitFor(() => a.bus.ownChannel() && b.bus.ownChannel(), 10_000, 'both on their own channels')
  // 16 patterns per node for the batches, 16 for the progress lines (counted per link: NUMPAT
  // counts distinct patterns, and two nodes' sets can share some, depending on their origins)
  const clients = String(await admin.call('CLIENT', 'LIST'))
  expect([...clients.matchAll(/ psub=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)).toBe(64)
  const readBack = [a.bus.stats.ownReadBack, b.bus.stats.ownReadBack]

  await Promise.all([publish(a.bus, 'a', 0, 2000), publish(b.bus, 'b', 0, 2000)])
  await waitFor(() => (b.got.get('a')?.length ?? 0) >= 2000 && (a.got.get('b')?.length ?? 0) >= 2000, 10_000, 'every message across')
  expect(b.got.get('a')).toEqual(range(0, 2000))
  expect(a.got.get('b')).toEqual(range(0, 2000))
  expect([a.bus.stats.ownReadBack, b.bus.stats.ownReadBack]).toEqual(readBack)
  // a full count (the other node's link) settles at once: nothing held
  expect([a.held, b.held]).toEqual([[], []])
  expect(a.bus.stats.fromPeers).toBeGreaterThan(0)
  expect(b.bus.stats.fromPeers).toBeGreaterThan(0)
})

it('a node of the previous release (shared channel only) and a new one deliver both ways exactly once; the new one stays on the shared channel', async () => {
  const a = await node('a')
  const old = await node('old', { sharedOnly: true })
  await new Promise((r) => setTimeout(r, 1800))
  expect(a.bus.ownChannel()).toBe(false)
  const readBack = a.bus.stats.ownReadBack
  await Promise.all([publish(a.bus, 'a', 0, 1000), publish(old.bus, 'old', 0, 1000)])
  await waitFor(() => (old.got.get('a')?.length ?? 0) >= 1000 && (a.got.get('old')?.length ?? 0) >= 1000, 10_000, 'every message across')
  expect(old.got.get('a')).toEqual(range(0, 1000))
  expect(a.got.get('old')).toEqual(range(0, 1000))
  // on the shared channel both read their own batches back, and drop them
  expect(a.bus.stats.ownReadBack).toBeGreaterThan(readBack)
  expect(old.bus.stats.ownReadBack).toBeGreaterThan(0)
})

it('a switch between the channels mid-stream (a node of the previous release leaves, another joins) loses and repeats nothing', async () => {
  const a = await node('a')
  const b = await node('b')
  let old: TestNode | undefined = await node('old', { sharedOnly: true })
  await new Promise((r) => setTimeout(r, 1800))
  expect(a.bus.ownChannel()).toBe(false)
  const modes = new Set<boolean>()
  let joined: TestNode | undefined
  await publish(a.bus, 'a', 0, 6000, 10, async (sent) => {
    modes.add(a.bus.ownChannel())
    // shared -> own: the old node says bye
    if (sent === 1000 && old) {
      await closeNode(old)
      // what it got until then: each once, in order, from the first on
      const got = old.got.get('a') ?? []
      expect(got.length).toBeGreaterThan(500)
      expect(got).toEqual(range(0, got.length))
      old = undefined
    }
    // own -> shared: a node of the previous release starts, and is heard
    if (sent === 3000 && a.bus.ownChannel()) joined = await node('old', { sharedOnly: true })
    // let the stream run a while in each mode
    if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 5))
  })
  expect(modes).toEqual(new Set([false, true]))
  expect(joined).toBeDefined()
  await waitFor(() => !a.bus.ownChannel(), 5000, 'back on the shared channel once the old node is heard')
  await waitFor(() => (b.got.get('a')?.length ?? 0) >= 6000, 10_000, 'every message on B')
  expect(b.got.get('a')).toEqual(range(0, 6000))
  // and the node of the previous release that joined gets what is published now
  const from = joined!.got.get('a')?.length ?? 0
  await publish(a.bus, 'a', 6000, 500)
  await waitFor(() => (joined!.got.get('a')?.length ?? 0) >= from + 500, 10_000, 'the joined node has them')
  expect(joined!.got.get('a')!.slice(from)).toEqual(range(6000, 500))
})

it('[MQTT-4.3.2-2] a peer whose subscriber link drops misses nothing: the short PUBLISH replies on the own channel hold and re-publish', async () => {
  const a = await node('a')
  const b = await node('b')
  await waitFor(() => a.bus.ownChannel() && b.bus.ownChannel(), 10_000, 'both on their own channels')
  const bSub = b.links[0]!
  let cut = false
  await publish(a.bus, 'a', 0, 3000, 10, async (sent) => {
    // B's subscriber link drops and reconnects (ioredis subscribes its patterns again) while A
    // publishes; B is still live (its beats go on its publisher link)
    if (sent === 1000) {
      cut = true
      bSub.disconnect(true)
    }
    if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 5))
  })
  expect(cut).toBe(true)
  // A held batches that B's link had not received, until it had them
  expect(a.held.reduce((n, e) => n + e.batches, 0)).toBeGreaterThan(0)
  expect(a.held.reduce((n, e) => n + e.released, 0)).toBe(0)
  await waitFor(() => (b.got.get('a')?.length ?? 0) >= 3000, 10_000, 'every message on B')
  expect(b.got.get('a')).toEqual(range(0, 3000))
})
