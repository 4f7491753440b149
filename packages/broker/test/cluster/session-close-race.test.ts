/**
 * [MQTT-4.1.0-2] across two nodes (real redis-server, raw MQTT): a session that ends when its
 * connection closes, the close made by the server (a protocol error, keepalive, a limit, a
 * violation), is gone for a client that reconnects at once, on the other node, with Clean Start
 * 0: Session Present 0 [MQTT-3.2.2-2] and none of the old subscriptions. Each session first
 * existed with a Session Expiry Interval (its subscription stored in Redis) and was then resumed
 * with an interval of 0, so it ends with that connection (MQTT 5 section 3.1.2.11.2). The client
 * reconnects as soon as it saw the close. Guards: a 3.1.1 clean session the client closes, and a
 * session with an interval the server closes (kept). CULEX_SESSION_CLOSE_ROUNDS rounds per case
 * (default 20; `npm run test:session-close:long` runs 200).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { FAST, killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { Raw, destroyAll, pkt } from '../conformance/raw.js'
import { sessionBack, survived, type Back } from '../helpers/session-back.js'

const ROUNDS = Number(process.env.CULEX_SESSION_CLOSE_ROUNDS ?? 20)
const MAX_PACKET = 1024

let redis: TestRedis
let nodes: TestNode[]

beforeAll(async () => {
  redis = await startRedis({ debugCommand: true })
  const opts = [...FAST, '--max-packet-size', String(MAX_PACKET)]
  nodes = await Promise.all([startNode(redis.url, 'close-a', opts), startNode(redis.url, 'close-b', opts)])
})

afterAll(async () => {
  destroyAll()
  await killAll()
})

const open = (i: number, version: 4 | 5 = 5): Promise<Raw> => Raw.open(nodes[i % 2]!.mqtt, version)

/**
 * `id` gets a session with a subscription to `old/<id>` kept in Redis (Session Expiry 60), then
 * resumes it on node `i` with a Session Expiry Interval of 0: it ends when this connection closes
 */
async function endingSession(i: number, id: string, keepalive = 60): Promise<Raw> {
  const first = await open(i)
  await first.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await first.subscribe(`old/${id}`, 1)
  await first.disconnect({ reasonCode: 0 })
  const c = await open(i)
  const ack = await c.connect({ clientId: id, clean: false, keepalive, properties: { sessionExpiryInterval: 0 } })
  expect(ack.sessionPresent).toBe(true)
  return c
}

/** `rounds` rounds of: an ending session on one node, closed by `close`, then back at once on the other */
async function race(name: string, close: (c: Raw) => Promise<void>, keepalive?: number, parallel = false): Promise<Back[]> {
  const round = async (r: number): Promise<Back> => {
    const id = `${name}-${r}`
    const c = await endingSession(r, id, keepalive)
    await close(c)
    expect(c.closed).toBe(true)
    return sessionBack(nodes[(r + 1) % 2]!.mqtt, id)
  }
  if (parallel) return Promise.all(Array.from({ length: ROUNDS }, (_, r) => round(r)))
  const seen: Back[] = []
  for (let r = 0; r < ROUNDS; r++) seen.push(await round(r))
  return seen
}

describe('cluster: a session that ends at a server-side close is gone for a client back at once on the other node [MQTT-4.1.0-2]', () => {
  it('[MQTT-3.14.2-2] a DISCONNECT that sets a Session Expiry of 0 to non-zero is a protocol error: DISCONNECT 0x82, closed, the session ends; Session Present 0 on the other node', async () => {
    const seen = await race('close-pe', async (c) => {
      c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
      await c.closedBy()
      // DISCONNECT 0x82 before the close (none when the DISCONNECT came before the node was done
      // replaying the resumed session: broker/mqtt5-packets.ts, noted in the issue)
      expect(c.packets.slice(1).map((p) => `${p.cmd} ${p.reasonCode}`)).toEqual(c.packets.length > 1 ? ['disconnect 130'] : [])
    })
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-3.1.2-24] keepalive: silent for 1.5 x the Keep Alive, closed by the server; Session Present 0 on the other node', async () => {
    const seen = await race('close-ka', (c) => c.closedBy(5000), 1, true)
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-3.2.2-15] a packet over max_packet_size: DISCONNECT 0x95, closed; Session Present 0 on the other node', async () => {
    const seen = await race('close-big', async (c) => {
      c.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(MAX_PACKET * 2), qos: 0 })
      await c.closedBy()
    })
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-3.3.1-4] a malformed packet (PUBLISH with QoS 3) closes the connection; Session Present 0 on the other node', async () => {
    const seen = await race('close-bad', async (c) => {
      c.send(pkt(0x36, Buffer.from([0, 1, 0x61, 0, 1, 0])))
      await c.closedBy()
    })
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-3.1.0-2] a second CONNECT is a protocol violation that closes the connection; Session Present 0 on the other node', async () => {
    const seen = await race('close-2nd', async (c) => {
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, keepalive: 60, clientId: 'x' })
      await c.closedBy()
    })
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-3.1.2-6] MQTT 3.1.1: a Clean Session 1 connection (which discarded the stored session) closed by the client, then Clean Session 0 at once on the other node: Session Present 0, nothing of the old session (guard: holds without a mark, a clean session keeps nothing in Redis)', async () => {
    const seen: Back[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const id = `close-311-${r}`
      const first = await open(r, 4)
      await first.connect({ clientId: id, clean: false })
      await first.subscribe(`old/${id}`, 1)
      await first.disconnect()
      const pub = await open(r, 4)
      await pub.connect({ clientId: `${id}-pub` })
      await pub.publish(`old/${id}`, 'queued', 1)
      pub.destroy()
      const c = await open(r, 4)
      expect((await c.connect({ clientId: id, clean: true })).sessionPresent).toBe(false)
      await c.subscribe(`new/${id}`, 1)
      c.destroy()
      const b = await open(r + 1, 4)
      const ack = await b.connect({ clientId: id, clean: false })
      await b.subscribe(`mark/${id}`, 0)
      b.send({ cmd: 'publish', topic: `old/${id}`, payload: 'after the end', qos: 1, messageId: 1 })
      b.send({ cmd: 'publish', topic: `new/${id}`, payload: 'after the end', qos: 1, messageId: 2 })
      b.send({ cmd: 'publish', topic: `mark/${id}`, payload: 'mark', qos: 0 })
      const got = (await b.until(`mark/${id}`)).filter((p) => p.cmd === 'publish').map((p) => p.topic)
      b.destroy()
      seen.push({ id, present: ack.sessionPresent, got })
    }
    expect(survived(seen)).toEqual([])
  }, 60_000)

  it('[MQTT-4.1.0-1] a session with a Session Expiry Interval closed by the server (a malformed packet) is kept: Session Present 1 on the other node at once, with its queued QoS 1 message (guard: no end is marked)', async () => {
    for (let r = 0; r < 3; r++) {
      const id = `close-kept-${r}`
      const c = await open(r)
      await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
      await c.subscribe(`old/${id}`, 1)
      c.send(pkt(0x36, Buffer.from([0, 1, 0x61, 0, 1, 0])))
      await c.closedBy()
      const pub = await open(r)
      await pub.connect({ clientId: `${id}-pub` })
      await pub.publish(`old/${id}`, 'queued', 1)
      pub.destroy()
      const b = await open(r + 1)
      const ack = await b.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
      expect(ack.sessionPresent).toBe(true)
      const p = await b.expect('publish')
      expect([p.topic, String(p.payload)]).toEqual([`old/${id}`, 'queued'])
      b.destroy()
    }
  }, 60_000)

  // last: Redis stalls for 2 s
  it('a close that ends a session waits at most ~1 s for its mark when Redis does not answer (DEBUG SLEEP)', async () => {
    const c = await endingSession(0, 'close-stall')
    const db = new Redis(redis.url)
    void db.call('DEBUG', 'SLEEP', '2').finally(() => db.disconnect())
    // the stall has begun once a command from elsewhere waits
    await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    c.send(pkt(0x36, Buffer.from([0, 1, 0x61, 0, 1, 0])))
    await c.closedBy(5000)
    expect(Date.now() - t0).toBeLessThan(1800)
  })
})
