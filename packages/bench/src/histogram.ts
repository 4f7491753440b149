/** Latency histogram (hdr-histogram-js), recorded in microseconds, reported in milliseconds. */
import * as hdr from 'hdr-histogram-js'

export type Histogram = hdr.Histogram

export interface LatencySummary {
  samples: number
  mean_ms: number | null
  p50_ms: number | null
  p90_ms: number | null
  p99_ms: number | null
  p999_ms: number | null
  max_ms: number | null
}

export function createHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  })
}

/** Records a latency in microseconds (rounded, at least 1 µs). */
export function recordMicros(h: Histogram, us: number): void {
  h.recordValue(Math.max(1, Math.round(us)))
}

const ms = (us: number): number => Math.round(us) / 1000

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) {
    return { samples: 0, mean_ms: null, p50_ms: null, p90_ms: null, p99_ms: null, p999_ms: null, max_ms: null }
  }
  return {
    samples: h.totalCount,
    mean_ms: ms(h.mean),
    p50_ms: ms(h.getValueAtPercentile(50)),
    p90_ms: ms(h.getValueAtPercentile(90)),
    p99_ms: ms(h.getValueAtPercentile(99)),
    p999_ms: ms(h.getValueAtPercentile(99.9)),
    max_ms: ms(h.maxValue),
  }
}

/** Serialises a histogram to send it across threads. */
export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h)
}

/** Adds encoded histograms (from worker threads) into one. */
export function mergeHistograms(encoded: string[]): Histogram {
  const total = createHistogram()
  for (const e of encoded) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false)
    total.add(h)
    h.destroy()
  }
  return total
}
