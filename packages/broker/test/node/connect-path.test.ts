/**
 * The connect path cut for connects/s (issue 15, docs/performance.md "Connect path"), as a client
 * sees it: the CONNACK leaves in the tick it is written (listeners/write-batching.ts), other
 * packets still wait for the end of the loop turn; the $SYS client notices a one-node broker
 * leaves out while unheard (seam/aedes-sys-clients.ts) still reach whoever subscribes to them.
 */
import { once } from 'node:events'
import { connect as netConnect, createServer, type Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { batchWrites } from '../../src/listeners/write-batching.js'
import { collect, connect, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

const sockets: Socket[] = []
afterAll(() => {
  for (const s of sockets) s.destroy()
})

async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = netConnect((server.address() as { port: number }).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [Socket]
  await once(client, 'connect')
  server.close()
  sockets.push(client, accepted)
  return [accepted, client]
}

/** bytes still held in `conn` when a setImmediate queued just before `write` runs */
async function heldAtTurnEnd(conn: Socket, write: () => void): Promise<number> {
  const held = new Promise<number>((resolve) => setImmediate(() => resolve(conn.writableLength)))
  write()
  return held
}

describe('connect path', () => {
  it('a CONNACK [MQTT-3.2.1] leaves the batched socket within its tick; a PUBLISH waits for the end of the loop turn', async () => {
    const [conn] = await socketPair()
    batchWrites(conn)
    // CONNACK as mqtt-packet writes it: fixed header, remaining length, flags, return code
    const connack = await heldAtTurnEnd(conn, () => {
      conn.write(Buffer.from([0x20]))
      conn.write(Buffer.from([0x02]))
      conn.write(Buffer.from([0x00, 0x00]))
    })
    expect(connack).toBe(0)
    const publish = await heldAtTurnEnd(conn, () => {
      conn.write(Buffer.from([0x30, 0x03]))
      conn.write(Buffer.from([0x00, 0x01, 0x74]))
    })
    expect(publish).toBe(5)
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
