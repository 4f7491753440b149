/**
 * The receiving side of the cluster bus (bus-order.ts): whatever order and however many times
 * the batches of a node arrive (re-sent after a short PUBLISH, or overtaken around a
 * resubscribe), the local subscribers get each once and in the order sent [MQTT-4.6.0-6]. Pure.
 */
import { describe, expect, it } from 'vitest'
import { BusOrder, RESEND_WAIT_MS } from '../../src/cluster/bus-order.js'
import { formatRuns, KeptBatches, parseRuns } from '../../src/cluster/bus-keep.js'
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

  it('asks the sender for a gap its base has passed, and gives it up only when the sender sent all it kept or did not answer in time', () => {
    const got: string[] = []
    const missed: Array<[string, number]> = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), (o, n) => missed.push([o, n]), (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    // this node was away: b settled 2..4 meanwhile (kept them) and now sends 5 with base 5
    order.batch('b', 5, 5, batch('m5'))
    order.batch('b', 6, 5, batch('m6'))
    order.beat('b', 7)
    expect(asked).toEqual([['b', 2, 5]]) // once for the gap, not for every batch or beat after it
    expect(got).toEqual(['m1'])
    order.batch('b', 3, 1, batch('m3')) // b's answer: 3 and 4 (2 was dropped already)
    order.batch('b', 4, 1, batch('m4'))
    order.resent('b', 2, 5)
    expect(got).toEqual(['m1', 'm3', 'm4', 'm5', 'm6'])
    expect(missed).toEqual([['b', 1]])
    // a sender that does not answer (an older node): given up after RESEND_WAIT_MS
    order.batch('b', 9, 9, batch('m9'))
    expect(asked).toEqual([['b', 2, 5], ['b', 7, 9]])
    order.expireAsks(Date.now())
    expect(got).toEqual(['m1', 'm3', 'm4', 'm5', 'm6'])
    order.expireAsks(Date.now() + RESEND_WAIT_MS)
    expect(got).toEqual(['m1', 'm3', 'm4', 'm5', 'm6', 'm9'])
    expect(missed).toEqual([['b', 1], ['b', 2]])
  })
})

describe('cluster bus: requests for a gap and their answers', () => {
  it('asks for the part of a gap the sender settled after the first request, and gives up only once both are answered; an answer to an earlier gap does not count', () => {
    const got: string[] = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), () => {}, (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 4, 3, batch('m4')) // 2 and 3 missing, b holds 3 on
    order.beat('b', 5) // b settled 3 and 4 meanwhile: 3 must be asked for too (4 is here)
    expect(asked).toEqual([['b', 2, 3], ['b', 3, 5]])
    order.batch('b', 2, 1, batch('m2'))
    order.resent('b', 2, 3)
    expect(got).toEqual(['m1', 'm2']) // still waiting for the answer about 3
    order.batch('b', 3, 2, batch('m3'))
    order.resent('b', 3, 5)
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    // a new gap, then a late answer to an older request: the new one still waits
    order.batch('b', 7, 7, batch('m7'))
    expect(asked.at(-1)).toEqual(['b', 5, 7])
    order.resent('b', 3, 5)
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    order.batch('b', 5, 4, batch('m5'))
    order.batch('b', 6, 4, batch('m6'))
    order.resent('b', 5, 7)
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'])
  })
})

describe('cluster bus: an answer whose batches were lost on the way [MQTT-4.3.2-2]', () => {
  it('asks again for what the sender said it had and this node still lacks, and gives up only what the sender did not have', () => {
    const got: string[] = []
    const missed: Array<[string, number]> = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), (o, n) => missed.push([o, n]), (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 8, 8, batch('m8')) // 2..7 settled while this node looked dead
    expect(asked).toEqual([['b', 2, 8]])
    // b had 3..7 (2 was dropped) and sent them, but only 3 and 6 came (this node's link dropped meanwhile)
    order.batch('b', 3, 1, batch('m3'))
    order.batch('b', 6, 1, batch('m6'))
    order.resent('b', 2, 8, parseRuns('3-8'))
    expect(asked).toEqual([['b', 2, 8], ['b', 4, 6], ['b', 7, 8]])
    expect(got).toEqual(['m1'])
    expect(missed).toEqual([])
    order.batch('b', 4, 1, batch('m4'))
    order.batch('b', 5, 1, batch('m5'))
    order.resent('b', 4, 6, parseRuns('4-6'))
    order.batch('b', 7, 1, batch('m7'))
    order.resent('b', 7, 8, parseRuns('7-8'))
    expect(got).toEqual(['m1', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8'])
    expect(missed).toEqual([['b', 1]]) // batch 2: the sender no longer had it
  })

  it('asks again at most a few times for batches that never come; an older node\'s answer (no runs) gives up at once', () => {
    const missed: Array<[string, number]> = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder(() => {}, (o, n) => missed.push([o, n]), (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 4, 4, batch('m4'))
    for (let i = 0; i < 10 && missed.length === 0; i++) order.resent('b', 2, 4, [[2, 4]])
    expect(asked).toEqual([['b', 2, 4], ['b', 2, 4], ['b', 2, 4], ['b', 2, 4]])
    expect(missed).toEqual([['b', 2]])
    order.batch('b', 6, 6, batch('m6'))
    order.resent('b', 5, 6, undefined)
    expect(missed).toEqual([['b', 2], ['b', 1]])
  })

  it('the runs a sender had travel as text and back', () => {
    expect(formatRuns([])).toBe('-')
    expect(formatRuns([5, 3, 4, 9])).toBe('3-6,9-10')
    expect(parseRuns('3-6,9-10')).toEqual([[3, 6], [9, 10]])
    expect(parseRuns('-')).toEqual([])
    expect(parseRuns(undefined)).toBeUndefined()
    expect(parseRuns('6-3')).toBeUndefined()
  })
})

describe('cluster bus: a request or its answer lost (Redis restarted, a link not subscribed yet)', () => {
  it('asks again when its own link subscribes again and waits from then; gives nothing up while that link is down; asking() says what is still wanted', () => {
    const got: string[] = []
    const missed: Array<[string, number]> = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), (o, n) => missed.push([o, n]), (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    const t = Date.now()
    order.batch('b', 4, 4, batch('m4')) // 2 and 3 settled while this node looked dead
    expect(asked).toEqual([['b', 2, 4]])
    expect(order.asking('b', 2, 4, t)).toBe(true)
    expect(order.asking('b', 2, 3, t)).toBe(false)
    // the link went down (Redis restart): past the wait, but nothing could be heard meanwhile
    order.tick(0, 60_000, 1000, t + 1000)
    order.tick(undefined, 60_000, 1000, t + 2000)
    order.tick(undefined, 60_000, 1000, t + RESEND_WAIT_MS + 1000)
    expect(missed).toEqual([])
    // subscribed again: asked again, and the wait starts over
    order.reask(t + RESEND_WAIT_MS + 1500)
    expect(asked).toEqual([['b', 2, 4], ['b', 2, 4]])
    order.tick(0, 60_000, 1000, t + RESEND_WAIT_MS + 2000)
    expect(missed).toEqual([])
    // the answer (twice: one per request): delivered once each, in order
    for (let i = 0; i < 2; i++) {
      order.batch('b', 2, 1, batch('m2'))
      order.batch('b', 3, 1, batch('m3'))
      order.resent('b', 2, 4)
    }
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    expect(order.asking('b', 2, 4)).toBe(false)
    expect(missed).toEqual([])
    // unanswered after a re-ask: given up RESEND_WAIT_MS after it
    order.batch('b', 7, 7, batch('m7'))
    const t2 = Date.now()
    order.reask(t2)
    order.tick(0, 60_000, 1000, t2 + 1000)
    order.tick(0, 60_000, 1000, t2 + RESEND_WAIT_MS - 500)
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    order.tick(0, 60_000, 1000, t2 + RESEND_WAIT_MS + 400)
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4', 'm7'])
    expect(missed).toEqual([['b', 2]])
  })
})

describe('cluster bus: a node frozen or starved (timers before sockets)', () => {
  it('a late tick forgets nobody and gives no gap up; an origin forgotten and heard again goes on where it was, copies dropped', () => {
    const got: string[] = []
    const asked: Array<[string, number, number]> = []
    const order = new BusOrder((ps) => got.push(...ps.map((p) => p.topic)), () => {}, (o, from, to) => asked.push([o, from, to]))
    order.batch('b', 1, 1, batch('m1'))
    order.batch('b', 2, 1, batch('m2'))
    const t = Date.now()
    order.tick(0, 100, 10, t) // the first tick
    order.tick(0, 100, 10, t + 500) // 500 ms late for a 10 ms tick, b silent 500 ms: its beats may be unread
    expect(got).toEqual(['m1', 'm2'])
    order.batch('b', 3, 2, batch('m3')) // still known: in order
    order.tick(0, 100, 10, t + 1000) // late again
    order.tick(0, 100, 10, t + 1005) // on time, and b silent for 1 s > 100 ms: forgotten
    // b was alive: its retry of batch 2 (base 2, from its first sending) and a kept copy come
    order.batch('b', 2, 2, batch('m2'))
    order.batch('b', 4, 2, batch('m4'))
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4'])
    expect(asked).toEqual([])
  })
})

describe('cluster bus: batches kept for a peer that missed them (bus-keep.ts)', () => {
  const buf = (n: number): Buffer => Buffer.alloc(n)
  it('keeps the recent ones (time, bytes), longer and more while a peer is silent, returns a range, and reports byte drops only then', () => {
    const overflow: number[] = []
    // keep 1000 ms / 300 B while a peer is silent, else 100 ms / 150 B
    const kept = new KeptBatches((n) => overflow.push(n), 1000, 300, 100, 150)
    kept.keep(1, buf(100), 0)
    kept.keep(2, buf(100), 10) // 200 B > 150: batch 1 dropped, silently
    expect(kept.range(0, 10)).toHaveLength(1)
    kept.trim(200) // older than 100 ms
    expect(kept.size).toBe(0)
    expect(overflow).toEqual([])
    kept.silence('a', 300)
    expect(kept.active).toBe(true)
    kept.keep(3, buf(100), 200)
    kept.keep(4, buf(100), 250)
    kept.keep(5, buf(100), 900)
    expect(kept.range(4, 6).map((b) => b.buf.length)).toEqual([100, 100])
    kept.keep(6, buf(100), 950) // 400 bytes > 300: batch 3 dropped, reported at the next trim
    expect(kept.range(0, 10)).toHaveLength(3)
    kept.trim(1300) // batch 4 older than 1000 ms
    expect(kept.size).toBe(2)
    expect(overflow).toEqual([1])
    kept.left('a') // bye
    expect(kept.active).toBe(false)
    kept.trim(1301) // back to 100 ms
    expect(kept.size).toBe(0)
  })

  it('a silent peer that never comes back (killed), or an outage of this node\'s own link, keeps batches for keepMs at most', () => {
    const kept = new KeptBatches(() => {}, 1000, 300, 100, 150)
    kept.silence('b', 2000) // heard again or not: until keepMs after
    kept.trim(2900)
    expect(kept.active).toBe(true)
    kept.trim(3100)
    expect(kept.active).toBe(false)
    kept.keep(1, buf(10), 3950)
    kept.linkDown(4000) // what was sent just before the outage stays too
    kept.trim(4800)
    expect(kept.range(0, 5)).toHaveLength(1)
    kept.trim(5100)
    expect(kept.active).toBe(false)
  })

  it('keeps what a live peer has not delivered yet (its progress reports) past recentMs and the recent byte bound, up to maxBytes', () => {
    let floor = 1 // every live pacing peer delivered batch 1, not 2 on
    const kept = new KeptBatches(() => {}, 1000, 300, 100, 150, () => floor)
    kept.keep(1, buf(100), 0)
    kept.keep(2, buf(100), 10) // 200 B > 150: batch 1 (delivered) dropped, 2 stays
    expect(kept.range(0, 10)).toHaveLength(1)
    kept.keep(3, buf(100), 20)
    kept.trim(5000) // long past 100 ms: the peer has not delivered them, they stay
    expect(kept.range(0, 10)).toHaveLength(2)
    kept.keep(4, buf(100), 5000)
    kept.keep(5, buf(100), 5010) // 400 B > 300: the oldest goes, delivered or not
    expect(kept.range(0, 10)).toHaveLength(3)
    floor = 3
    kept.trim(5050) // 3 delivered and old: dropped; 4 and 5 not delivered yet
    expect(kept.range(0, 10).length).toBe(2)
    floor = 4
    kept.trim(5060) // 4 delivered, 10 ms old, but over the recent byte bound: dropped
    expect(kept.range(0, 10).length).toBe(1)
    kept.trim(60_000) // 5: not delivered yet
    expect(kept.range(0, 10).length).toBe(1)
    floor = 5
    kept.trim(60_001)
    expect(kept.size).toBe(0)
  })
})
