/** Pieces shared by every scenario run. */
import { randomBytes } from 'node:crypto'
import type { ScenarioConfig } from '../options.js'
import type { ReportConfig } from '../report/types.js'

export function newRunId(): number {
  return randomBytes(4).readUInt32BE(0) || 1
}

export function hex(runId: number): string {
  return runId.toString(16).padStart(8, '0')
}

export function reportConfig(cfg: ScenarioConfig, publishers: number, subscribers: number, extra: Partial<ReportConfig> = {}): ReportConfig {
  const msg = cfg.scenario !== 'connections'
  return {
    qos: cfg.qos,
    protocol: cfg.protocol,
    size_bytes: cfg.size,
    duration_s: cfg.durationS,
    warmup_s: msg ? cfg.warmupS : 0,
    workers: cfg.workers,
    window: cfg.window,
    pairs: cfg.scenario === 'throughput' || cfg.scenario === 'persistent' || cfg.scenario === 'latency' ? cfg.pairs : null,
    publishers,
    subscribers,
    rate_per_s: cfg.scenario === 'latency' ? cfg.rate : null,
    connections: cfg.scenario === 'connections' ? cfg.connections : null,
    pub_urls: cfg.pubUrls,
    sub_urls: cfg.subUrls,
    ...extra,
  }
}

export const nowNs = (): bigint => process.hrtime.bigint()

/** Sleeps until the hrtime instant `ns`. */
export function sleepUntil(ns: bigint): Promise<void> {
  const ms = Number(ns - nowNs()) / 1e6
  return new Promise((r) => setTimeout(r, Math.max(0, ms)))
}

export const round = (n: number, digits = 1): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}
