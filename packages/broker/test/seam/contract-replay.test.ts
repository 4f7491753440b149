/**
 * Contract of the paced session replay (seam/aedes-replay.ts, docs/internals.md row A23) with a
 * stock Aedes broker and its memory persistence, raw MQTT 5 clients: lib/handlers/connect.js
 * emptyQueue calls persistence.outgoingUpdate for each queued PUBLISH while the client is
 * `connecting` and not `connected`, writes it once that resolves, and takes the next one only
 * after the write; the client's other packets are handled meanwhile; a replay left waiting when
 * the connection closes leaves the rest queued.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  destroyAll()
  await closeStock()
})

const publishes = (c: Raw): string[] => c.packets.filter((p) => p.cmd === 'publish').map((p) => String(p.payload))

/** `id` gets a session on `port` with QoS 1 messages `payloads` queued for it */
async function queued(port: number, id: string, payloads: string[]): Promise<void> {
  const sub = await Raw.open(port, 5)
  await sub.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await sub.subscribe(`${id}/t`, 1)
  await sub.disconnect()
  const pub = await Raw.open(port, 5)
  await pub.connect({ clientId: `${id}-pub` })
  for (const [i, p] of payloads.entries()) await pub.publish(`${id}/t`, p, 1, false, i + 1)
  pub.destroy()
}

const resume = async (port: number, id: string): Promise<Raw> => {
  const c = await Raw.open(port, 5)
  await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  return c
}

describe('seam contract: the session replay at CONNECT, paced', () => {
  it('A23 aedes connect.js emptyQueue: outgoingUpdate per queued PUBLISH while connecting, the write after it resolves, the next after the write; a PINGREQ answered meanwhile; live deliveries not asked (seam paceSessionReplay; onceReplayWaits at the first wait)', async () => {
    const asked: string[] = []
    let open: (() => void) | undefined
    const waited: string[] = []
    const s = await stockBroker({}, (b) => {
      seam.paceSessionReplay(b, (client: Client) => {
        const c = client as unknown as { connecting: boolean; connected: boolean }
        asked.push(`${client.id}:${c.connecting}:${c.connected}`)
        // the third waits
        return asked.length === 3 ? new Promise<void>((resolve) => (open = resolve)) : undefined
      })
      // onceReplayWaits: the first wait of the client's replay, once ('client': registered, before its replay)
      b.on('client', (client: Client) => seam.onceReplayWaits(client, () => waited.push(client.id)))
    })
    await queued(s.port, 'a23', ['a', 'b', 'c', 'd', 'e'])
    const c = await resume(s.port, 'a23')
    await eventually(() => (open ? true : undefined), 3000, 'the third asked')
    c.send({ cmd: 'pingreq' })
    await c.expect('publish')
    await c.expect('publish')
    await c.expect('pingresp')
    expect(publishes(c)).toEqual(['a', 'b'])
    expect(waited).toEqual(['a23'])
    open!()
    await eventually(() => (publishes(c).length === 5 ? true : undefined), 3000, 'the rest')
    expect(publishes(c)).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(asked).toEqual(Array.from({ length: 5 }, () => 'a23:true:false'))
    // connected: a live delivery goes on without asking
    const pub = await Raw.open(s.port, 5)
    await pub.connect({ clientId: 'a23-live' })
    await pub.publish('a23/t', 'live', 1)
    await eventually(() => (publishes(c).length === 6 ? true : undefined), 3000, 'the live one')
    expect(asked.length).toBe(5)
    expect(waited).toEqual(['a23'])
  })

  it('A23 a replay left waiting when the connection closes sends nothing more; the next CONNECT gets the rest of the queue', async () => {
    let hold = true
    const s = await stockBroker({}, (b) => seam.paceSessionReplay(b, () => (hold ? new Promise<void>(() => {}) : undefined)))
    await queued(s.port, 'a23b', ['a', 'b', 'c'])
    const c = await resume(s.port, 'a23b')
    c.send({ cmd: 'pingreq' })
    await c.expect('pingresp')
    expect(publishes(c)).toEqual([])
    c.destroy()
    await c.closedBy()
    hold = false
    const again = await resume(s.port, 'a23b')
    await eventually(() => (publishes(again).length === 3 ? true : undefined), 3000, 'the queue at the next CONNECT')
    expect(publishes(again)).toEqual(['a', 'b', 'c'])
  })
})
