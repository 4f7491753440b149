import { describe, expect, it } from 'vitest'
import { judge, SequenceTracker, tally, type StreamCounts } from '../src/accounting.js'

function feed(seqs: number[]): SequenceTracker {
  const t = new SequenceTracker()
  for (const s of seqs) t.record(s)
  return t
}

const counts = (sub: number, pub: number, t: SequenceTracker): StreamCounts => ({
  sub,
  pub,
  unique: t.unique,
  duplicated: t.duplicated,
  outOfOrder: t.outOfOrder,
  maxSeq: t.maxSeq,
})

describe('SequenceTracker', () => {
  it('counts an in-order stream as complete', () => {
    const t = feed([0, 1, 2, 3, 4])
    expect(t).toMatchObject({ unique: 5, duplicated: 0, outOfOrder: 0, maxSeq: 4 })
    expect(t.gaps).toBe(0)
  })

  it('tells duplicates, late arrivals and holes apart', () => {
    const t = new SequenceTracker()
    expect(t.record(0)).toBe('new')
    expect(t.record(2)).toBe('new')
    expect(t.gaps).toBe(1) // 1 is missing so far
    expect(t.record(1)).toBe('out_of_order')
    expect(t.gaps).toBe(0)
    expect(t.record(2)).toBe('duplicate')
    expect(t.record(0)).toBe('duplicate')
    expect(t).toMatchObject({ unique: 3, duplicated: 2, outOfOrder: 1 })
  })

  it('handles sequence numbers far beyond its initial size', () => {
    const t = feed([0, 100_000, 5_000_000])
    expect(t.has(5_000_000)).toBe(true)
    expect(t.has(4_999_999)).toBe(false)
    expect(t.gaps).toBe(5_000_001 - 3)
    expect(t.record(5_000_000)).toBe('duplicate')
  })

  it('rejects nonsense sequence numbers', () => {
    expect(() => new SequenceTracker().record(-1)).toThrow(RangeError)
  })
})

describe('tally', () => {
  it('a stream with a hole reports the hole as loss', () => {
    const t = feed([0, 1, 2, 4, 5, 6, 7, 8, 9]) // 3 never arrives
    const r = tally([{ id: 0, sent: 10, unacked: 0 }], [counts(0, 0, t)], [[0, 0]])
    expect(r).toMatchObject({ expected: 10, received: 9, lost: 1, duplicated: 0, outOfOrder: 0 })
  })

  it('missing tail messages count as lost too', () => {
    const t = feed([0, 1, 2])
    expect(tally([{ id: 0, sent: 5, unacked: 0 }], [counts(0, 0, t)], [[0, 0]]).lost).toBe(2)
  })

  it('a subscriber that got nothing lost everything', () => {
    const r = tally([{ id: 7, sent: 50, unacked: 0 }], [], [[3, 7]])
    expect(r).toMatchObject({ expected: 50, received: 0, lost: 50 })
  })

  it('a shared subscription group owes each message once, spread over its members; more than was sent is duplication', () => {
    const groups = [{ members: [0, 1], pubs: [0] }]
    const pubs = [{ id: 0, sent: 6, unacked: 0 }]
    const even = tally(pubs, [counts(0, 0, feed([0, 2, 4])), counts(1, 0, feed([1, 3, 5]))], [], 0, groups)
    expect(even).toMatchObject({ expected: 6, received: 6, lost: 0, duplicated: 0, unexpected: 0 })
    const short = tally(pubs, [counts(0, 0, feed([0, 2])), counts(1, 0, feed([1, 3, 5]))], [], 0, groups)
    expect(short).toMatchObject({ received: 5, lost: 1 })
    const twice = tally(pubs, [counts(0, 0, feed([0, 1, 2, 4])), counts(1, 0, feed([1, 3, 5]))], [], 0, groups)
    expect(twice).toMatchObject({ received: 6, lost: 0, duplicated: 1 })
    // a member's messages from a publisher the group does not listen to are unexpected
    expect(tally(pubs, [counts(0, 1, feed([0]))], [], 0, groups).unexpected).toBe(1)
  })

  it('adds up fan-out: every subscriber owes every publisher', () => {
    const full = feed([0, 1, 2, 3])
    const partial = feed([0, 2, 3, 3])
    const r = tally(
      [{ id: 0, sent: 4, unacked: 0 }],
      [counts(0, 0, full), counts(1, 0, partial)],
      [
        [0, 0],
        [1, 0],
      ],
    )
    expect(r).toMatchObject({ expected: 8, received: 7, lost: 1, duplicated: 1 })
  })

  it('does not count unacknowledged publishes as owed', () => {
    const t = feed([0, 1, 2, 3, 4, 5, 6, 7])
    const r = tally([{ id: 0, sent: 10, unacked: 2 }], [counts(0, 0, t)], [[0, 0]])
    expect(r).toMatchObject({ lost: 0, unacked: 2 })
  })

  it('counts messages from publishers a subscriber should not hear as unexpected', () => {
    const r = tally([{ id: 0, sent: 2, unacked: 0 }, { id: 1, sent: 2, unacked: 0 }], [counts(0, 0, feed([0, 1])), counts(0, 1, feed([0, 1]))], [[0, 0]])
    expect(r).toMatchObject({ lost: 0, unexpected: 2 })
  })
})

describe('judge', () => {
  const base = { expected: 10, received: 10, lost: 0, duplicated: 0, outOfOrder: 0, unexpected: 0, unacked: 0 }

  it('QoS 0 may lose but not duplicate', () => {
    expect(judge(0, { ...base, lost: 3 }).valid).toBe(true)
    const dup = judge(0, { ...base, duplicated: 1 })
    expect(dup.valid).toBe(false)
    expect(dup.invalid_reason).toMatch(/duplicate/)
  })

  it('QoS 1 may duplicate but not lose', () => {
    expect(judge(1, { ...base, duplicated: 4 }).valid).toBe(true)
    const lost = judge(1, { ...base, lost: 1 })
    expect(lost).toEqual({ valid: false, invalid_reason: expect.stringMatching(/1 message\(s\) lost at QoS 1/) })
  })

  it('QoS 2 may do neither', () => {
    expect(judge(2, { ...base, lost: 1 }).valid).toBe(false)
    expect(judge(2, { ...base, duplicated: 1 }).valid).toBe(false)
    expect(judge(2, base)).toEqual({ valid: true, invalid_reason: null })
  })

  it('out-of-order alone does not invalidate, unacknowledged publishes and strays do', () => {
    expect(judge(1, { ...base, outOfOrder: 5 }).valid).toBe(true)
    expect(judge(1, { ...base, unacked: 1 }).valid).toBe(false)
    expect(judge(0, { ...base, unexpected: 1 }).valid).toBe(false)
  })
})
