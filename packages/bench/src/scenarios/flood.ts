/**
 * flood: P publishers (default 1) write to one topic that M subscribers
 * (default 50) read, with no in-flight window: QoS 0 as fast as TCP takes it,
 * QoS 1 without waiting for PUBACKs (bounded only by the 16-bit packet id
 * space). Besides rate and latency it reports what the broker did with the
 * overload: QoS 0 dropped (seen by the subscribers, and counted by the broker
 * in culex_messages_dropped_total where it has /metrics), the peak RSS of
 * every broker process, and how long the brokers stayed busy after the load
 * stopped.
 */
import { BrokerWatch } from '../broker-watch.js'
import type { ScenarioConfig } from '../options.js'
import type { FloodResults } from '../report/types.js'
import type { RunObserver } from './message-run.js'
import { range, type TopologyBuilder } from './topology.js'

/** QoS 1 publishes in flight per publisher: nearly all 65535 packet ids (a few left for SUBSCRIBE) */
export const FLOOD_WINDOW = 65_000
/** longest wait for the brokers to go idle after the load stopped */
const SETTLE_MAX_MS = 10_000

export const flood: TopologyBuilder = (cfg, prefix) => {
  const topic = `${prefix}/flood`
  return {
    publishers: Array.from({ length: cfg.publishers }, () => ({ topic })),
    subscribers: Array.from({ length: cfg.subscribers }, () => ({ filter: topic, pubs: range(cfg.publishers) })),
    ratePerPub: 0,
  }
}

/** Per URL, the sum of every sample of a Prometheus counter (null: no answer, or no such counter). */
export async function readCounter(urls: string[], name: string): Promise<Array<number | null>> {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`)
  return Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
        if (!res.ok) return null
        let total: number | null = null
        for (const line of (await res.text()).split('\n')) {
          const m = re.exec(line)
          if (m) total = (total ?? 0) + Number(m[1])
        }
        return total
      } catch {
        return null
      }
    }),
  )
}

/** The counter's growth summed over the URLs; null when a URL did not answer both times or restarted. */
export function counterDelta(before: Array<number | null>, after: Array<number | null>): number | null {
  if (before.length === 0) return null
  let sum = 0
  for (let i = 0; i < before.length; i++) {
    const b = before[i]
    const a = after[i]
    if (b === null || b === undefined || a === null || a === undefined || a < b) return null
    sum += a - b
  }
  return sum
}

const DROPPED = 'culex_messages_dropped_total'

export function floodObserver(cfg: ScenarioConfig): RunObserver<FloodResults> {
  const roots = cfg.brokerProcesses ?? cfg.brokerPids.map((pid) => ({ name: `pid ${pid}`, pid }))
  const watch = new BrokerWatch(roots, cfg.metricsUrls)
  let droppedBefore: Array<number | null> = []
  return {
    async begin() {
      droppedBefore = await readCounter(cfg.metricsUrls, DROPPED)
      watch.start()
    },
    loadStopped() {
      watch.loadStopped()
    },
    drained() {
      watch.drained()
    },
    async finish() {
      const settle = await watch.settle(SETTLE_MAX_MS)
      const settleAfterDrain = await watch.settleAfterDrain(SETTLE_MAX_MS)
      const peaks = watch.stop()
      const droppedAfter = await readCounter(cfg.metricsUrls, DROPPED)
      return {
        broker_dropped: counterDelta(droppedBefore, droppedAfter),
        peak_rss: peaks,
        peak_rss_max_bytes: peaks.length ? Math.max(...peaks.map((p) => p.bytes)) : null,
        busy_after_stop_s: settle,
        busy_after_drain_s: settleAfterDrain,
      }
    },
    abort() {
      watch.stop()
    },
  }
}
