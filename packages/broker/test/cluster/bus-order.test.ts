/**
 * The receiving side of the cluster bus (bus-order.ts): whatever order and however many times
 * the batches of a node arrive (re-sent after a short PUBLISH, or overtaken around a
 * resubscribe), the local subscribers get each once and in the order sent [MQTT-4.6.0-6]. Pure.
 */
import { describe, expect, it } from 'vitest'
import { BusOrder } from '../../src/cluster/bus-order.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'

const batch = (...topics: string[]): BusPacket[] => topics.map((t) => ({ topic: t, payload: Buffer.alloc(0), qos: 1, retain: false, dup: false }))

function setup(): { order: BusOrder; got: string[]; missed: Array<[string, number]> } {
  const got: string[] = []
  const missed: Array<[string, number]> = []
  const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), (o, n) => missed.push([o, n]))
  return { order, got, missed }
}

describe('cluster bus: order and copies of received batches', () => {
  it('delivers a re-sent batch once, and one that overtook an earlier batch after it [MQTT-4.6.0-6]', () => {
    const { order, got } = setup()
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 3, 2, batch('m3')) // batch 2 missed this node
    order.batch('b', 4, 2, batch('m4'))
    expect(got).toEqual(['m1'])
    order.batch('b', 2, 2, batch('m2')) // the sender's retry
    order.batch('b', 3, 2, batch('m3')) // and a copy of one this node had
    order.batch('b', 1, 1, batch('m1'))
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    expect(order.stats).toEqual({ duplicates: 2, missed: 0 })
  })

  it('gives a gap up when the sender no longer holds it (base, on a batch or a beat), delivering what it held', () => {
    const { order, got, missed } = setup()
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 3, 2, batch('m3'))
    expect(got).toEqual(['m1'])
    order.beat('b', 3)
    expect(got).toEqual(['m1', 'm3'])
    expect(missed).toEqual([['b', 1]])
    order.batch('b', 6, 6, batch('m6'))
    expect(got).toEqual(['m1', 'm3', 'm6'])
    expect(missed).toEqual([['b', 1], ['b', 2]])
  })

  it('keeps origins apart; a first batch from an origin starts at its base; older nodes (no number) pass straight through', () => {
    const { order, got } = setup()
    order.batch('c', 10, 9, batch('c10')) // c still holds 9: it may come
    order.batch('b', 5, 5, batch('b5'))
    order.batch('c', 9, 9, batch('c9'))
    order.batch('old', undefined, undefined, batch('x'))
    order.batch('old', undefined, undefined, batch('x'))
    expect(got).toEqual(['b5', 'c9', 'c10', 'x', 'x'])
  })

  it('a node that left (bye) or fell silent: what it sent is delivered in order, then it is forgotten', () => {
    const { order, got } = setup()
    order.batch('b', 1, 1, batch('b1'))
    order.batch('b', 3, 2, batch('b3'))
    order.forget('b')
    expect(got).toEqual(['b1', 'b3'])
    order.batch('c', 1, 1, batch('c1'))
    order.batch('c', 4, 2, batch('c4'))
    order.sweep(60_000, 0) // heard just now: kept
    expect(got).toEqual(['b1', 'b3', 'c1'])
    order.sweep(-1, 0)
    expect(got).toEqual(['b1', 'b3', 'c1', 'c4'])
  })
})
