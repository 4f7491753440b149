/**
 * The suite as a matrix: one row per (scenario, QoS, protocol, figure), one cell per
 * target, each with its ratio to the baseline (Mosquitto). Table, Markdown
 * and chart renderers all draw from this.
 */
import type { Protocol, QoS } from '../options.js'
import type { ConnectionResults, MessageResults, ScenarioReport, SuiteReport } from './types.js'
import { fmtBytes, fmtNum } from './format.js'

export interface Cell {
  value: number | null
  text: string
  ratio: number | null
  invalid: boolean
  reason: string | null
  /** shown after the ratio: a generator thread over GEN_BUSY busy when the figure was measured */
  flag?: string | null
}

export interface Row {
  run: string
  scenario: string
  metric: string
  unit: string
  /** true when bigger is better, false when smaller is, null for plain counts */
  higherIsBetter: boolean | null
  /** a headline figure drawn in the chart */
  chart: boolean
  cells: Cell[]
}

interface MetricDef {
  metric: string
  unit: string
  higherIsBetter: boolean | null
  chart: boolean
  get: (r: ScenarioReport) => number | null
  fmt?: (v: number | null) => string
  /** the cell's text from the whole run (instead of fmt) */
  text?: (r: ScenarioReport) => string
  /** the generator's saturation is flagged next to this figure */
  flagGenerator?: boolean
  /** the row is left out when no target has the figure */
  optional?: boolean
}

/** a generator thread busier than this (event loop utilisation) may have bounded the figure */
export const GEN_BUSY = 0.9

/** "gen 97%" when a generator thread was over GEN_BUSY busy over the measured window, else null */
export function generatorFlag(r: ScenarioReport): string | null {
  const busiest = Math.max(0, ...r.generator.event_loop_utilization)
  return busiest > GEN_BUSY ? `⚠gen ${Math.round(busiest * 100)}%` : null
}

const msg = (r: ScenarioReport): MessageResults | null => (r.results.kind === 'messages' ? r.results : null)
const conn = (r: ScenarioReport): ConnectionResults | null => (r.results.kind === 'connections' ? r.results : null)

const rate = (scenarioChart: boolean): MetricDef => ({
  metric: 'deliveries_per_s',
  unit: 'msg/s',
  higherIsBetter: true,
  chart: scenarioChart,
  get: (r) => msg(r)?.deliveries_per_s ?? null,
  flagGenerator: true,
})
const cpuOf = (r: ScenarioReport) => r.results.broker_cpu ?? null
/** µs of broker CPU per delivery (per connection in the connections scenario), over the measured window */
const brokerCpu = (unit: string, chart: boolean): MetricDef => ({
  metric: 'broker_cpu',
  unit,
  higherIsBetter: false,
  chart,
  get: (r) => cpuOf(r)?.broker_us_per_delivery ?? null,
  fmt: (v) => fmtNum(v, v !== null && v < 100 ? 1 : 0),
})
/** the same for Redis and HAProxy, where the target has them */
const helperCpu = (unit: string): MetricDef => ({
  metric: 'redis/haproxy_cpu',
  unit,
  higherIsBetter: null,
  chart: false,
  optional: true,
  get: (r) => {
    const c = cpuOf(r)
    if (!c || (c.redis_us_per_delivery === null && c.haproxy_us_per_delivery === null)) return null
    return (c.redis_us_per_delivery ?? 0) + (c.haproxy_us_per_delivery ?? 0)
  },
  text: (r) => {
    const c = cpuOf(r)
    const parts = [c?.redis_us_per_delivery, c?.haproxy_us_per_delivery].map((v) => (v === null || v === undefined ? '-' : fmtNum(v, 1)))
    return c && parts.some((p) => p !== '-') ? parts.join(' / ') : 'n/a'
  },
})
const cpuRows = (unit = 'µs/delivery', chart = false): MetricDef[] => [brokerCpu(unit, chart), helperCpu(unit)]
const lat = (key: 'p50_ms' | 'p90_ms' | 'p99_ms' | 'p999_ms' | 'max_ms', chart = false): MetricDef => ({
  metric: key,
  unit: 'ms',
  higherIsBetter: false,
  chart,
  get: (r) => msg(r)?.[key] ?? null,
})
const correctness: MetricDef = {
  metric: 'lost/dup/ooo',
  unit: '',
  higherIsBetter: null,
  chart: false,
  get: (r) => {
    const m = msg(r)
    return m ? m.lost + m.duplicated + m.out_of_order : null
  },
}
const genCpu: MetricDef = {
  metric: 'generator_cpu_pct',
  unit: '%',
  higherIsBetter: null,
  chart: false,
  get: (r) => r.generator.cpu_percent,
  fmt: (v) => (v === null ? 'n/a' : `${Math.round(v)}%`),
}

/** the hypervisor's steal over the window (selfcheck.ts): every figure of that run was measured short of it */
const steal: MetricDef = {
  metric: 'vm_steal_pct',
  unit: '%',
  higherIsBetter: null,
  chart: false,
  optional: true,
  get: (r) => r.generator.vm_steal_pct ?? null,
  fmt: (v) => (v === null ? 'n/a' : `${v}%`),
}

const flood = (r: ScenarioReport) => msg(r)?.flood ?? null
const floodMetrics: MetricDef[] = [
  rate(true),
  ...cpuRows(),
  lat('p50_ms'),
  lat('p99_ms', true),
  lat('max_ms'),
  correctness,
  { metric: 'broker_dropped', unit: '', higherIsBetter: null, chart: false, get: (r) => flood(r)?.broker_dropped ?? null },
  {
    metric: 'peak_rss_largest_process',
    unit: 'bytes',
    higherIsBetter: false,
    chart: true,
    get: (r) => flood(r)?.peak_rss_max_bytes ?? null,
    fmt: (v) => fmtBytes(v),
  },
  { metric: 'busy_after_stop_s', unit: 's', higherIsBetter: false, chart: false, get: (r) => flood(r)?.busy_after_stop_s ?? null },
  { metric: 'busy_after_drain_s', unit: 's', higherIsBetter: false, chart: false, get: (r) => flood(r)?.busy_after_drain_s ?? null },
  genCpu,
  steal,
]

export const METRICS: Record<string, MetricDef[]> = {
  throughput: [rate(true), ...cpuRows('µs/delivery', true), lat('p50_ms'), lat('p99_ms'), correctness, genCpu, steal],
  persistent: [rate(true), ...cpuRows('µs/delivery', true), lat('p50_ms'), lat('p99_ms'), correctness, genCpu, steal],
  fanout: [rate(true), ...cpuRows('µs/delivery', true), lat('p99_ms'), correctness, genCpu, steal],
  fanin: [rate(true), ...cpuRows('µs/delivery', true), lat('p99_ms'), correctness, genCpu, steal],
  flood: floodMetrics,
  shared: [
    rate(true),
    ...cpuRows(),
    lat('p99_ms'),
    correctness,
    { metric: 'balance', unit: 'min/max', higherIsBetter: null, chart: false, get: (r) => msg(r)?.shared?.balance ?? null },
    genCpu,
    steal,
  ],
  latency: [lat('p50_ms', true), lat('p90_ms'), lat('p99_ms', true), lat('p999_ms'), lat('max_ms'), ...cpuRows(), correctness, genCpu, steal],
  connections: [
    { metric: 'connects_per_s', unit: 'conn/s', higherIsBetter: true, chart: true, get: (r) => conn(r)?.connects_per_s ?? null, flagGenerator: true },
    ...cpuRows('µs/connect'),
    {
      metric: 'heap_per_connection',
      unit: 'bytes',
      higherIsBetter: null,
      chart: false,
      optional: true,
      get: (r) => conn(r)?.heap_per_connection_bytes ?? null,
      fmt: (v) => fmtBytes(v),
    },
    {
      metric: 'rss_per_connection',
      unit: 'bytes',
      higherIsBetter: false,
      chart: true,
      get: (r) => conn(r)?.rss_per_connection_bytes ?? null,
      fmt: (v) => fmtBytes(v),
    },
    { metric: 'failures', unit: '', higherIsBetter: null, chart: false, get: (r) => conn(r)?.failures ?? null },
    genCpu,
    steal,
  ],
}

/** the row of a run: scenario, QoS, and ` v5` for MQTT 5 clients */
export const matrixKey = (scenario: string, qos: QoS | null, protocol: Protocol | undefined): string =>
  `${scenario === 'connections' ? 'connections' : `${scenario} qos${qos}`}${protocol === 5 ? ' v5' : ''}`

export const runKey = (r: ScenarioReport): string => matrixKey(r.scenario, r.config.qos, r.config.protocol)

function correctnessText(r: ScenarioReport): string {
  const m = msg(r)
  return m ? `${m.lost}/${m.duplicated}/${m.out_of_order}` : 'n/a'
}

export function buildMatrix(suite: SuiteReport): Row[] {
  const keys: Array<{ key: string; scenario: string }> = []
  for (const scenario of suite.config.scenarios) {
    for (const p of suite.config.protocols ?? [4]) {
      if (scenario === 'connections') keys.push({ key: matrixKey(scenario, null, p), scenario })
      else for (const q of scenario === 'flood' ? (suite.config.flood_qos ?? suite.config.qos) : suite.config.qos) keys.push({ key: matrixKey(scenario, q, p), scenario })
    }
  }
  for (const t of suite.targets) {
    for (const r of t.runs) if (!keys.some((k) => k.key === runKey(r))) keys.push({ key: runKey(r), scenario: r.scenario })
    for (const e of t.errors) {
      const key = matrixKey(e.scenario, e.qos, e.protocol)
      if (!keys.some((k) => k.key === key)) keys.push({ key, scenario: e.scenario })
    }
  }
  const rows: Row[] = []
  for (const { key, scenario } of keys) {
    for (const def of METRICS[scenario] ?? []) {
      const base = suite.targets[0]?.runs.find((r) => runKey(r) === key)
      const baseVal = base ? def.get(base) : null
      const cells = suite.targets.map((t): Cell => {
        if (t.status === 'skipped') return { value: null, text: 'skipped', ratio: null, invalid: false, reason: t.reason }
        const r = t.runs.find((x) => runKey(x) === key)
        if (!r) {
          const err = t.errors.find((e) => matrixKey(e.scenario, e.qos, e.protocol) === key)
          return { value: null, text: err || t.status === 'failed' ? 'error' : 'n/a', ratio: null, invalid: false, reason: err?.error ?? t.reason }
        }
        const v = def.get(r)
        const ratio = def.higherIsBetter !== null && v !== null && baseVal ? v / baseVal : null
        const text = def.metric === 'lost/dup/ooo' ? correctnessText(r) : def.text ? def.text(r) : def.fmt ? def.fmt(v) : fmtNum(v)
        return { value: v, text, ratio, invalid: !r.valid, reason: r.invalid_reason, flag: def.flagGenerator ? generatorFlag(r) : null }
      })
      if (def.optional && cells.every((c) => c.value === null)) continue
      rows.push({ run: key, scenario, metric: def.metric, unit: def.unit, higherIsBetter: def.higherIsBetter, chart: def.chart, cells })
    }
  }
  return rows
}
