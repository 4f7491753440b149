/**
 * The connect path cut for connects/s (issue 15, docs/performance.md "Connect path"), as a client
 * sees it: the CONNACK leaves once Aedes has finished the connect (listeners/write-batching.ts
 * flushWrites at clientReady), not at the end of the loop turn, and not before the client counts
 * as connected; other packets still wait for the end of the turn; the $SYS client notices a one-node broker
 * leaves out while unheard (seam/aedes-sys-clients.ts) still reach whoever subscribes to them.
 */
import type { Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { batchWrites, flushWrites } from '../../src/listeners/write-batching.js'
import { collect, connect, startTestNode, useTestNode, waitFor } from '../helpers/node.js'
import { closeSocketPairs, socketPair } from '../helpers/socket-pair.js'

const t = useTestNode()

afterAll(closeSocketPairs)

/** bytes still held in `conn` when a setImmediate queued just before `write` runs */
async function heldAtTurnEnd(conn: Socket, write: () => void): Promise<number> {
  const held = new Promise<number>((resolve) => setImmediate(() => resolve(conn.writableLength)))
  write()
  return held
}

describe('connect path', () => {
  it('flushWrites sends what a batched socket holds at once (the CONNACK at clientReady); other writes wait for the end of the loop turn', async () => {
    const [conn] = await socketPair()
    batchWrites(conn)
    // a CONNACK as mqtt-packet writes it [MQTT-3.2.1]: fixed header, remaining length, flags, return code
    const flushed = await heldAtTurnEnd(conn, () => {
      conn.write(Buffer.from([0x20, 0x02]))
      conn.write(Buffer.from([0x00, 0x00]))
      flushWrites(conn)
    })
    expect(flushed).toBe(0)
    const batched = await heldAtTurnEnd(conn, () => {
      conn.write(Buffer.from([0x30, 0x03]))
      conn.write(Buffer.from([0x00, 0x01, 0x74]))
    })
    expect(batched).toBe(5)
  })

  it('a v5 client told 0x8B right after its CONNACK: the CONNACK leaves only once Aedes counts the client connected [MQTT-3.14.0-1]', async () => {
    const node = await startTestNode()
    const c = await connect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { protocolVersion: 5, clientId: 'cp-stop' })
    const reason = new Promise<number | undefined>((resolve) => {
      c.once('disconnect', (p) => resolve(p.reasonCode))
      c.once('close', () => resolve(undefined))
    })
    await node.close({ drain: false })
    expect(await reason).toBe(0x8b)
  })

  it('a subscriber to $SYS/+/new/clients gets the id of each client that connects; $SYS/# gets its disconnect too', async () => {
    const plus = await connect(t.url, { clientId: 'cp-plus' })
    const gotPlus = collect(plus)
    await plus.subscribeAsync('$SYS/+/new/clients', { qos: 0 })
    const all = await connect(t.url, { clientId: 'cp-all' })
    const gotAll = collect(all)
    await all.subscribeAsync('$SYS/#', { qos: 0 })
    const other = await connect(t.url, { clientId: 'cp-other' })
    await waitFor(() => gotPlus.some((m) => m.payload === 'cp-other'), 5000, 'new/clients notice')
    expect(gotPlus.find((m) => m.payload === 'cp-other')?.topic).toMatch(/^\$SYS\/[^/]+\/new\/clients$/)
    await other.endAsync()
    await waitFor(() => gotAll.some((m) => m.topic.endsWith('/disconnect/clients') && m.payload === 'cp-other'), 5000, 'disconnect/clients notice')
    expect(gotAll.some((m) => m.topic.endsWith('/new/clients') && m.payload === 'cp-other')).toBe(true)
  })
})
