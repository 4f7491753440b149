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

/** Sum of every sample of a Prometheus counter over the URLs; null when none has it. */
export async function readCounter(urls: string[], name: string): Promise<number | null> {
  let total: number | null = null
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`)
  for (const url of urls) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
      if (!res.ok) continue
      for (const line of (await res.text()).split('\n')) {
        const m = re.exec(line)
        if (m) total = (total ?? 0) + Number(m[1])
      }
    } catch {
      // a node that does not answer contributes nothing
    }
  }
  return total
}

const DROPPED = 'culex_messages_dropped_total'

export function floodObserver(cfg: ScenarioConfig): RunObserver<FloodResults> {
  const roots = cfg.brokerProcesses ?? cfg.brokerPids.map((pid) => ({ name: `pid ${pid}`, pid }))
  const watch = new BrokerWatch(roots, cfg.metricsUrls)
  let droppedBefore: number | null = null
  return {
    async begin() {
      droppedBefore = await readCounter(cfg.metricsUrls, DROPPED)
      watch.start()
    },
    loadStopped() {
      watch.loadStopped()
    },
    async finish() {
      const settle = await watch.settle(SETTLE_MAX_MS)
      const peaks = watch.stop()
      const droppedAfter = await readCounter(cfg.metricsUrls, DROPPED)
      return {
        broker_dropped: droppedBefore !== null && droppedAfter !== null ? droppedAfter - droppedBefore : null,
        peak_rss: peaks,
        peak_rss_max_bytes: peaks.length ? Math.max(...peaks.map((p) => p.bytes)) : null,
        busy_after_stop_s: settle,
      }
    },
    abort() {
      watch.stop()
    },
  }
}
