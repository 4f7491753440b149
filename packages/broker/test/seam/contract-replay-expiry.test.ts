/**
 * Contract of seam/aedes-replay-expiry.ts (docs/internals.md row A24) with a stock Aedes broker
 * and its memory persistence, raw MQTT 5 clients: lib/handlers/connect.js emptyQueue drops a
 * replayed entry whose `messageExpiry` passed, even one sent before; with the seam, an entry sent
 * before (DUP 1: here from mapSessionReplay, row A8, as broker/redelivery.ts does) goes out again
 * with a Message Expiry Interval of 1, and one never sent is still dropped.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { closeStock, eventually, stockBroker, type Stock } from './stock.js'

afterEach(async () => {
  destroyAll()
  await closeStock()
})

const session = { clean: false, properties: { sessionExpiryInterval: 60 } }

/**
 * `id` gets 'sent' (QoS 1, expiry 1 s) and leaves it unacknowledged, loses its connection, gets
 * 'queued' (the same) meanwhile; 1.2 s later it returns: the PUBLISHes of its replay
 */
async function replayAfterExpiry(s: Stock, id: string): Promise<Raw['packets']> {
  const port = s.port
  const sub = await Raw.open(port, 5)
  await sub.connect({ clientId: id, ...session })
  await sub.subscribe(`${id}/t`, 1)
  const pub = await Raw.open(port, 5)
  await pub.connect({ clientId: `${id}-pub` })
  await pub.publish(`${id}/t`, 'sent', 1, false, 1, { messageExpiryInterval: 1 })
  await sub.expect('publish')
  sub.destroy()
  await sub.closedBy()
  await pub.publish(`${id}/t`, 'queued', 1, false, 2, { messageExpiryInterval: 1 })
  await new Promise((r) => setTimeout(r, 1200))
  const back = await Raw.open(port, 5)
  await back.connect({ clientId: id, ...session })
  // lib/handlers/connect.js sets `connected` once the replay's writes are done: a PINGRESP after it follows them
  const client = s.clients.at(-1) as unknown as { connected?: boolean }
  await eventually(() => (client.connected ? true : undefined), 3000, 'the end of the replay')
  back.send({ cmd: 'pingreq' })
  const got: Raw['packets'] = []
  for (let p = await back.next(); p.cmd !== 'pingresp'; p = await back.next()) got.push(p)
  return got
}

/** DUP 1 on replayed entries sent before, as broker/redelivery.ts does (row A8) */
const markSent = (b: Aedes): void => seam.mapSessionReplay<{ cmd?: string; messageId?: number; dup?: boolean }>(b, (p) => (p.cmd === 'publish' ? { ...p, dup: p.messageId !== undefined } : p))

describe('seam contract: sent messages past their expiry on the session replay', () => {
  it('A24 aedes connect.js emptyQueueFilter drops an expired entry of the replay, sent before or not', async () => {
    const s = await stockBroker({}, markSent)
    expect(await replayAfterExpiry(s, 'a24-stock')).toEqual([])
  }, 10_000)

  it('A24 with keepSentMessagesPastExpiry the entry sent before goes out again (DUP 1, interval 1); the one never sent is dropped', async () => {
    const s = await stockBroker({}, (b) => {
      markSent(b)
      seam.keepSentMessagesPastExpiry(b)
    })
    const got = await replayAfterExpiry(s, 'a24')
    expect(got.map((p) => [String(p.payload), p.dup, (p.properties as { messageExpiryInterval?: number } | undefined)?.messageExpiryInterval])).toEqual([['sent', true, 1]])
  }, 10_000)
})
