/**
 * Contract of seam/aedes-deliver.ts (docs/internals.md, row C13): the copy of Aedes' per-client
 * deliveries that writes a message in the turn it is delivered. The copied code must still be
 * Aedes' own (a changed upstream function is to be copied again, or the row dropped once upstream
 * writes in the turn itself), and the copy must write in the turn and call back in a later one.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

/** lib/client.js from getToForwardPacket to the keepalive fields and from dedupe to util.inherits, lib/write.js, lib/qos-packet.js */
function copiedSource(): string {
  const dir = path.dirname(createRequire(import.meta.url).resolve('aedes'))
  const read = (f: string): string => readFileSync(path.join(dir, f), 'utf8')
  const client = read('lib/client.js')
  const cut = (from: string, to: string): string => {
    const a = client.indexOf(from)
    const b = client.indexOf(to, a)
    return a < 0 || b < 0 ? `missing ${from}` : client.slice(a, b)
  }
  return [cut('const getToForwardPacket', 'this._keepaliveTimer = null'), cut('function dedupe', 'util.inherits'), read('lib/write.js'), read('lib/qos-packet.js')].join('\n')
}

/** a broker whose clients deliver through `deliver` and record, at the end of each delivery call, whether the PUBLISH was written yet and the callback called */
async function recording(deliver: 'stock' | 'in-turn') {
  const seen: Array<{ topic: string; writtenInTurn: boolean; calledBackInTurn: boolean }> = []
  const s = await stockBroker({}, (broker) =>
    seam.installOnEachClient(broker, 'limits', (c, stream) => {
      const written: string[] = []
      seam.onWrite(stream, (p) => void (p.cmd === 'publish' && written.push(p.topic!)))
      const stock = seam.deliveryOf(c)
      const wrap =
        (kind: 'deliver0' | 'deliverQoS') =>
        (p: seam.DeliveredPacket, cb: seam.Done): void => {
          let called = false
          const done: seam.Done = (err) => ((called = true), cb(err))
          if (deliver === 'stock') stock[kind](p, done)
          else if (kind === 'deliverQoS') seam.deliverQoSInTurn(c, p, done)
          else seam.deliverQoS0InTurn(c, p, done)
          seen.push({ topic: p.topic, writtenInTurn: written.includes(p.topic), calledBackInTurn: called })
        }
      seam.setDelivery(c, { deliver0: wrap('deliver0'), deliverQoS: wrap('deliverQoS') })
    }),
  )
  return { s, seen }
}

async function deliverTwo(port: number, s: { clients: Client[] }) {
  const { raw } = await rawClient(port, { clientId: 'c13' })
  await rawSubscribe(raw, 'c13/one', 1, 1)
  await rawSubscribe(raw, 'c13/zero', 0, 2)
  seam.setNextPacketId(s.clients[0]!, 4242)
  raw.send({ cmd: 'publish', topic: 'c13/one', payload: 'a', qos: 1, messageId: 1 })
  raw.send({ cmd: 'publish', topic: 'c13/zero', payload: 'b', qos: 1, messageId: 2 })
  await raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2)
  return raw.publishes().map((p) => ({ topic: p.topic, qos: p.qos, messageId: p.messageId, payload: String(p.payload) }))
}

describe('seam contract: C13 aedes lib/client.js deliverQoS / deliverQoS0, copied to write in the turn', () => {
  it('C13 the Aedes code aedes-deliver.ts copies is unchanged (lib/client.js deliveries, lib/write.js, lib/qos-packet.js)', () => {
    const digest = createHash('sha256').update(copiedSource()).digest('hex')
    expect(digest, 'Aedes changed the code seam/aedes-deliver.ts copies: copy it again (or drop row C13 if it writes in the turn now)').toBe(
      '374f03d0ed51758cb188749c233c01f780e0b81dbc6b76d34ab9cc4c49c573b0',
    )
  })

  it('C13 stock Aedes writes a delivery one turn later; the copy writes it in the turn, calls back later, and sends what stock sends', async () => {
    const stock = await recording('stock')
    const stockPackets = await deliverTwo(stock.s.port, stock.s)
    expect(stock.seen.map((d) => [d.topic, d.writtenInTurn, d.calledBackInTurn])).toEqual([
      ['c13/one', false, false],
      ['c13/zero', false, false],
    ])
    await closeRaw()
    await closeStock()

    const copy = await recording('in-turn')
    const copyPackets = await deliverTwo(copy.s.port, copy.s)
    expect(copy.seen.map((d) => [d.topic, d.writtenInTurn, d.calledBackInTurn])).toEqual([
      ['c13/one', true, false],
      ['c13/zero', true, false],
    ])
    // the packet id from client._nextId, QoS 0 through a QoS 0 subscription, as stock Aedes
    expect(copyPackets).toEqual(stockPackets)
    expect(copyPackets).toEqual([
      { topic: 'c13/one', qos: 1, messageId: 4242, payload: 'a' },
      { topic: 'c13/zero', qos: 0, messageId: undefined, payload: 'b' },
    ])
  })
})

describe('seam contract: C13 the callbacks of one client\'s deliveries written in a turn', () => {
  it('C13 are called in the order written, together in a later turn; UNWATCHED ones are skipped; every PUBLISH goes out', async () => {
    const s = await stockBroker()
    const { raw } = await rawClient(s.port, { clientId: 'c13-batch' })
    await rawSubscribe(raw, 'c13/batch', 1, 1)
    const client = s.clients[0]!
    const calls: string[] = []
    let inTurn = true
    const pk = (n: number): seam.DeliveredPacket =>
      ({ cmd: 'publish', topic: 'c13/batch', payload: Buffer.from(`m${n}`), qos: 1, retain: false, dup: false, brokerId: 'other-node', brokerCounter: n }) as seam.DeliveredPacket
    seam.deliverQoSInTurn(client, pk(1), () => calls.push(`1${inTurn ? ' in turn' : ''}`))
    seam.deliverQoSInTurn(client, pk(2), seam.UNWATCHED)
    seam.deliverQoSInTurn(client, pk(3), () => calls.push(`3${inTurn ? ' in turn' : ''}`))
    seam.deliverQoS0InTurn(client, pk(4), () => calls.push(`4${inTurn ? ' in turn' : ''}`))
    inTurn = false
    await raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 4)
    await new Promise((r) => setImmediate(r))
    expect(calls).toEqual(['1', '3', '4'])
    expect(raw.publishes().map((p) => String(p.payload))).toEqual(['m1', 'm2', 'm3', 'm4'])
  })
})
