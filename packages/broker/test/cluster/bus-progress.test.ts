/**
 * The sending side of receiver pacing (bus-progress.ts, issue 15): when a batch's emit callbacks
 * may fire (its QoS 1 PUBACKs leave) given how far each peer reports it has delivered. Pure: a
 * clock of the test's own; the sending side publishes nothing (bus-pacing.test.ts runs the whole
 * thing between real nodes).
 *
 * The lead was 50 messages only. With the `throughput` bench's 80 messages in flight nearly every
 * batch then waited for the receiver's report round trip, although the receiver was a fraction
 * of a millisecond behind; a fan-out receiver is ~5 ms behind at the same count. Now a peer
 * further behind than 50 messages is still close enough while the oldest batch it has not
 * delivered went out at most AHEAD_MS ago.
 */
import { describe, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import { AHEAD_BYTES, AHEAD_MESSAGES, AHEAD_MS, BusProgress } from '../../src/cluster/bus-progress.js'
import type { BusPacket } from '../../src/cluster/bus-codec.js'

const packets = (n: number, bytes = 64): BusPacket[] => Array.from({ length: n }, () => ({ topic: 't', payload: Buffer.alloc(bytes), qos: 1, retain: false, dup: false }))

function setup(): { progress: BusProgress; clock: { t: number }; done: number[]; send: (seq: number, n: number, bytes?: number) => void } {
  const clock = { t: 1000 }
  const done: number[] = []
  // the sending side never publishes: no Redis link is used
  const progress = new BusProgress({ pub: {} as Redis, channel: 'culex:bus:progress', origin: 'me', isLive: () => true, onError: (err) => { throw err }, now: () => clock.t })
  const send = (seq: number, n: number, bytes = 64): void => {
    progress.sending(seq, packets(n, bytes))
    progress.wait(seq, () => done.push(seq))
  }
  return { progress, clock, done, send }
}

describe('cluster bus: receiver pacing, the sending side', () => {
  it('a peer more than AHEAD_MESSAGES behind, but behind by a batch that went out within AHEAD_MS, does not hold the next', () => {
    const { progress, clock, done, send } = setup()
    send(1, 10)
    progress.onMessage('peer me=1')
    expect(done).toEqual([1])
    // 2 and 3 together are more than AHEAD_MESSAGES past what the peer delivered
    send(2, AHEAD_MESSAGES)
    clock.t += AHEAD_MS - 1
    send(3, 20)
    expect(done).toEqual([1, 2, 3])
  })

  it('holds a batch once the oldest batch the peer has not delivered is older than AHEAD_MS, until the peer reports', () => {
    const { progress, clock, done, send } = setup()
    send(1, 10)
    progress.onMessage('peer me=1')
    send(2, AHEAD_MESSAGES)
    clock.t += AHEAD_MS + 1
    send(3, 20)
    expect(done).toEqual([1, 2])
    expect(progress.held).toBe(1)
    // the peer delivered 2: 20 messages behind 3
    progress.onMessage('peer me=2')
    expect(done).toEqual([1, 2, 3])
    expect(progress.held).toBe(0)
  })

  it('holds a batch more than AHEAD_BYTES past the peer however recent', () => {
    const { progress, done, send } = setup()
    send(1, 1)
    progress.onMessage('peer me=1')
    send(2, 2, AHEAD_BYTES / 2 + 1)
    expect(done).toEqual([1])
    progress.onMessage('peer me=2')
    expect(done).toEqual([1, 2])
  })

  it('paces by every peer: a recent one does not release what a stale one holds', () => {
    const { progress, clock, done, send } = setup()
    send(1, 10)
    progress.onMessage('fast me=1')
    progress.onMessage('slow me=1')
    send(2, AHEAD_MESSAGES)
    progress.onMessage('fast me=2')
    clock.t += AHEAD_MS + 1
    send(3, 20)
    progress.onMessage('fast me=3')
    expect(done).toEqual([1, 2])
    progress.onMessage('slow me=3')
    expect(done).toEqual([1, 2, 3])
  })
})
