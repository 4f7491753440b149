import { describe, expect, it } from 'vitest'
import { createHistogram, encodeHistogram, mergeHistograms, recordMicros, summarize } from '../src/histogram.js'

describe('latency histogram', () => {
  it('summarises percentiles in milliseconds', () => {
    const h = createHistogram()
    for (let us = 1; us <= 10_000; us++) recordMicros(h, us) // 1 µs .. 10 ms, uniform
    const s = summarize(h)
    expect(s.samples).toBe(10_000)
    expect(s.p50_ms).toBeCloseTo(5, 1)
    expect(s.p90_ms).toBeCloseTo(9, 1)
    expect(s.p99_ms).toBeCloseTo(9.9, 1)
    expect(s.p999_ms).toBeCloseTo(9.99, 1)
    expect(s.max_ms).toBeCloseTo(10, 1)
    expect(s.mean_ms).toBeCloseTo(5, 1)
  })

  it('reports no figures, not zeros, when nothing was recorded', () => {
    expect(summarize(createHistogram())).toEqual({
      samples: 0,
      mean_ms: null,
      p50_ms: null,
      p90_ms: null,
      p99_ms: null,
      p999_ms: null,
      max_ms: null,
    })
  })

  it('merges histograms from several threads', () => {
    const fast = createHistogram()
    const slow = createHistogram()
    for (let i = 0; i < 900; i++) recordMicros(fast, 1000)
    for (let i = 0; i < 100; i++) recordMicros(slow, 50_000)
    const s = summarize(mergeHistograms([encodeHistogram(fast), encodeHistogram(slow)]))
    expect(s.samples).toBe(1000)
    expect(s.p50_ms).toBeCloseTo(1, 1)
    expect(s.p99_ms).toBeCloseTo(50, 0)
    expect(s.max_ms).toBeCloseTo(50, 0)
  })

  it('keeps sub-microsecond samples as 1 µs rather than dropping them', () => {
    const h = createHistogram()
    recordMicros(h, 0.2)
    expect(summarize(h).samples).toBe(1)
  })
})
