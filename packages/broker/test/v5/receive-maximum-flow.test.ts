/**
 * A session's queue replayed at CONNECT through the client's Receive Maximum window (limits/
 * client-guard.ts replayRoom, seam/aedes-replay.ts): as the client acknowledges, the rest comes, in
 * order, each message once, never more than the Receive Maximum unacknowledged [MQTT-3.3.4-9]
 * [MQTT-4.9.0-2]; live messages published meanwhile come after the queue [MQTT-4.6.0-6]; a client
 * gone in the middle gets the rest at its next CONNECT, the unacknowledged ones again with DUP 1
 * [MQTT-4.4.0-1]; a 3.1.1 client's replay is as before. One node, raw MQTT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { waitFor } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { queuedSession } from '../helpers/queued-session.js'
import { WindowedReader } from '../helpers/windowed-reader.js'

const QUEUED = 200
const RM = 10

afterAll(() => destroyAll())

describe('one node: a queue replayed through the Receive Maximum window', () => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode()
  })
  afterAll(() => node?.close())

  const resume = async (id: string, version: 4 | 5 = 5): Promise<Raw> => {
    const c = await Raw.open(node.ports.mqtt, version)
    const props = version === 5 ? { properties: { sessionExpiryInterval: 60, receiveMaximum: RM } } : {}
    await c.connect({ clientId: id, clean: false, ...props })
    return c
  }

  it(`[MQTT-3.3.4-9] [MQTT-4.9.0-2] [MQTT-4.6.0-6] acknowledging 3 at a time, all ${QUEUED} queued come in order, once, at most ${RM} unacknowledged; live ones after them`, async () => {
    const id = 'rm-flow'
    await queuedSession(node.ports.mqtt, id, QUEUED)
    const c = await resume(id)
    const r = new WindowedReader(c, RM)
    // the window fills, then live messages are published while the replay waits for PUBACKs
    await r.take(RM)
    const pub = await Raw.open(node.ports.mqtt, 5)
    await pub.connect({ clientId: `${id}-live` })
    for (let i = 0; i < 20; i++) await pub.publish(`q/${id}`, `live-${i}`, 1, false, i + 1)
    await r.take(QUEUED + 20 - RM, { ackEvery: 3 })
    expect(r.maxOutstanding).toBeLessThanOrEqual(RM)
    expect(r.payloads).toEqual([...Array.from({ length: QUEUED }, (_, i) => String(i)), ...Array.from({ length: 20 }, (_, i) => `live-${i}`)])
    expect(r.dups).toBe(0)
  }, 60_000)

  it(`[MQTT-4.4.0-1] [MQTT-3.3.4-9] gone mid-replay: the next CONNECT gets the rest, unacknowledged ones again with DUP 1, every message, a copy only with DUP 1`, async () => {
    const id = 'rm-flow-gone'
    await queuedSession(node.ports.mqtt, id, QUEUED)
    const got: Array<{ payload: string; dup: boolean }> = []
    const acked = new Set<string>()
    for (let round = 0; acked.size < QUEUED && round < 40; round++) {
      const c = await resume(id)
      const r = new WindowedReader(c, RM)
      // 25 messages a connection, the last 5 never acknowledged (but in the last round)
      const left = QUEUED - acked.size
      await r.take(Math.min(25, left), { ackEvery: 5, keepLast: left <= 25 ? 0 : 5 })
      expect(r.maxOutstanding).toBeLessThanOrEqual(RM)
      got.push(...r.received)
      for (const p of r.acked) acked.add(p)
      // the PUBACKs in before the connection goes
      c.send({ cmd: 'pingreq' })
      await waitFor(() => c.packets.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
      c.destroy()
      await c.closedBy()
    }
    // every message, first seen in order (one sent but unread when the connection went is first
    // seen at the next one, DUP 1); every copy seen again is DUP 1
    const seen = new Set<string>()
    const again = got.filter((g) => seen.has(g.payload) || !seen.add(g.payload))
    expect([...seen]).toEqual(Array.from({ length: QUEUED }, (_, i) => String(i)))
    expect(again.filter((g) => !g.dup)).toEqual([])
    expect(again.length).toBeGreaterThan(0)
  }, 60_000)

  it('a 3.1.1 client gets its queue as before, not held by a Receive Maximum', async () => {
    const id = 'rm-flow-311'
    // the session and its queue made at level 4 (queuedSession uses v5 clients; the session is the same)
    const sub = await Raw.open(node.ports.mqtt, 4)
    await sub.connect({ clientId: id, clean: false })
    await sub.subscribe(`q/${id}`, 1)
    sub.destroy()
    await sub.closedBy()
    const pub = await Raw.open(node.ports.mqtt, 4)
    await pub.connect({ clientId: `${id}-pub` })
    for (let i = 0; i < 50; i++) await pub.publish(`q/${id}`, String(i), 1, false, i + 1)
    const c = await resume(id, 4)
    // nothing acknowledged: all 50 come
    await waitFor(() => c.packets.filter((p) => p.cmd === 'publish').length === 50, 10_000, 'the 50 queued messages, unacknowledged')
  }, 30_000)
})
