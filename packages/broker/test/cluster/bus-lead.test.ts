/**
 * Receiver pacing's lead scales with the receiver's rate (src/cluster/bus-progress.ts, issue 15).
 * A sender lets a batch go (its emit callbacks fire, the publishers' PUBACKs leave) while every
 * pacing peer is behind it by at most its lead: AHEAD_MESSAGES at least, or what the peer
 * delivered in LEAD_MS at the rate its progress lines show, up to AHEAD_MESSAGES_MAX. Before, the
 * lead was 50 messages for any peer: at 70k messages/s that is ~0.7 ms, less than the report's
 * round trip, and the lead, not the receiver, held the `throughput` bench's rate across nodes. A
 * fan-out (a few thousand messages a second, each to many sockets) keeps the floor: its standing
 * queue stays at a few ms of the receiver's work.
 *
 * Pure logic (the lines are handed to onMessage as the control link would); the clock is faked so
 * that the rate is exact.
 */
import type { Redis } from 'ioredis'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { AHEAD_MESSAGES, AHEAD_MESSAGES_MAX, BusProgress, LEAD_MS } from '../../src/cluster/bus-progress.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'

const A = 'aaaaaaaaaaaaaaaa'
const B = 'bbbbbbbbbbbbbbbb'
let a: BusProgress
let seq = 0

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['performance', 'Date', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] })
  const pub = { publish: async () => 1 } as unknown as Redis
  a = new BusProgress({ pub, channel: 'lead:progress', origin: A, isLive: () => true, onError: (err) => expect.unreachable(err.message) })
  seq = 0
})
afterEach(() => {
  a.close()
  vi.useRealTimers()
})

const packets = (n: number): BusPacket[] =>
  Array.from({ length: n }, (_, i) => ({ cmd: 'publish', brokerId: 'a', brokerCounter: i, topic: 't', payload: Buffer.alloc(8), qos: 1, retain: false, dup: false }))

/** A sends a batch of `n` messages, Redis has answered: went() once its callbacks fired */
function send(n: number): { seq: number; went: () => boolean } {
  const s = ++seq
  a.sending(s, packets(n))
  let went = false
  a.wait(s, () => (went = true))
  return { seq: s, went: () => went }
}

/** B's line: it delivered A's batches up to `upTo` (not idle: something waits for its clients) */
const line = (upTo: number): void => a.onMessage(`${B} ${A}=${upTo}`)

it(`a peer delivering fast may be behind by what it delivers in ${LEAD_MS} ms, up to AHEAD_MESSAGES_MAX`, () => {
  const first = send(100)
  line(first.seq)
  expect(first.went()).toBe(true)
  // 8,000 messages delivered in 40 ms: 200 a millisecond, a lead of 400 (the bound)
  const fast = send(8000)
  vi.advanceTimersByTime(40)
  line(fast.seq)
  expect(a.leadOf(B)).toBe(AHEAD_MESSAGES_MAX)
  // a send of 300 past its line goes on Redis' word; with a lead of AHEAD_MESSAGES it waited
  expect(send(300).went()).toBe(true)
  // one that takes it past the lead waits for its next line
  const over = send(AHEAD_MESSAGES_MAX)
  expect(over.went()).toBe(false)
  line(over.seq)
  expect(over.went()).toBe(true)
})

it('a peer delivering a few thousand messages a second (a fan-out) keeps AHEAD_MESSAGES', () => {
  const first = send(10)
  line(first.seq)
  // 60 messages in 40 ms: 1.5 a millisecond, 3 in LEAD_MS: the floor
  const slow = send(60)
  vi.advanceTimersByTime(40)
  line(slow.seq)
  expect(a.leadOf(B)).toBe(AHEAD_MESSAGES)
  const over = send(AHEAD_MESSAGES + 10)
  expect(over.went()).toBe(false)
  line(over.seq)
  expect(over.went()).toBe(true)
  expect(send(AHEAD_MESSAGES).went()).toBe(true)
})

it('a rate in between gives its rate x LEAD_MS, measured again as the peer slows down', () => {
  line(send(10).seq)
  const mid = send(3000)
  vi.advanceTimersByTime(40)
  line(mid.seq)
  // 3000 / 40 ms = 75 a millisecond
  expect(a.leadOf(B)).toBe(75 * LEAD_MS)
  const later = send(100)
  vi.advanceTimersByTime(100)
  line(later.seq)
  // 100 in 100 ms: back to the floor
  expect(a.leadOf(B)).toBe(AHEAD_MESSAGES)
})

it('a peer that left and comes back starts again from the floor', () => {
  line(send(10).seq)
  const fast = send(8000)
  vi.advanceTimersByTime(40)
  line(fast.seq)
  expect(a.leadOf(B)).toBe(AHEAD_MESSAGES_MAX)
  a.forget(B)
  expect(a.leadOf(B)).toBe(AHEAD_MESSAGES)
})
