/** Shapes of the JSON report. Figures are named plainly, with their unit as a suffix. */
import type { Protocol, QoS, ScenarioName } from '../options.js'
import type { LatencySummary } from '../histogram.js'

export interface GeneratorCheck {
  threads: number
  cores: number
  /** CPU time of the whole generator process over the measured window, % of one core */
  cpu_percent: number
  cpu_user_ms: number
  cpu_system_ms: number
  /** per generator thread, busy share of its event loop (0..1) over the measured window */
  event_loop_utilization: number[]
  /**
   * the machine's CPU time its hypervisor gave to other guests over the measured window, % of all
   * its cores' time (/proc/stat steal); null where that is not known (not Linux); absent in older reports
   */
  vm_steal_pct?: number | null
  saturated: boolean
  note: string | null
}

/** the latency summary's figures (samples reported as latency_samples) */
export interface MessageResults extends Omit<LatencySummary, 'samples'> {
  kind: 'messages'
  publishers: number
  subscribers: number
  published: number
  published_per_s: number
  deliveries: number
  deliveries_per_s: number
  payload_mb_per_s: number
  expected_deliveries: number
  delivered_total: number
  lost: number
  duplicated: number
  out_of_order: number
  unexpected: number
  unacked: number
  dropped_connections: number
  latency_samples: number
  /** CPU the broker processes used over the measured window (absent without their PIDs) */
  broker_cpu?: BrokerCpu
  /** flood scenario only */
  flood?: FloodResults
  /** shared scenario only */
  shared?: SharedResults
}

/** what a watched process is: the broker (Mosquitto, a Culex node) or a helper counted apart */
export type CpuRole = 'broker' | 'redis' | 'haproxy' | 'other'

/**
 * Broker CPU (user + system, /proc/PID/stat) over the measured window, per delivery counted in it
 * (connections scenario: per connection opened in the ramp). Independent of whether the load
 * generator kept up, so the fair comparison of what a delivery costs each broker.
 */
export interface BrokerCpu {
  /** the window the CPU was sampled over (s); the per-delivery figures are scaled to the one the deliveries were counted in */
  window_s: number
  /** deliveries (connections) the per-unit figures divide by */
  deliveries: number
  /** every watched process and its CPU over the window (10 ms resolution) */
  processes: Array<{ process: string; role: CpuRole; cpu_ms: number }>
  /** summed over the broker processes */
  broker_cpu_ms: number
  /** % of one core */
  broker_cpu_percent: number
  /** µs of broker CPU per delivery (per connection in the connections scenario) */
  broker_us_per_delivery: number | null
  /** the same for Redis and HAProxy, null when the target has none */
  redis_us_per_delivery: number | null
  haproxy_us_per_delivery: number | null
}

/** How evenly each group's messages were spread over its members (shared scenario). */
export interface SharedResults {
  groups: number
  members_per_group: number
  /** fewest and most messages one member got, over every group */
  min_member: number
  max_member: number
  /** min_member / max_member (1 = perfectly even) */
  balance: number
}

/** What the brokers did with a flood (lost = QoS 0 the subscribers did not get). */
export interface FloodResults {
  /** culex_messages_dropped_total over the run, summed over the nodes; null without /metrics */
  broker_dropped: number | null
  /** highest RSS of each broker process (and each process it started) over the run */
  peak_rss: Array<{ process: string; bytes: number }>
  peak_rss_max_bytes: number | null
  /** seconds from the load stopping until every watched process was idle; null without PIDs */
  busy_after_stop_s: number | null
  /** seconds from the last delivery owed (end of the drain) to every broker process idle */
  busy_after_drain_s: number | null
}

export interface ConnectionResults {
  kind: 'connections'
  connections_requested: number
  /** connections opened and closed before the measured ramp (absent in reports older than it: none) */
  warmup_connections?: number
  connected: number
  failures: number
  failure_reasons: Record<string, number>
  ramp_s: number
  connects_per_s: number
  connect_p50_ms: number | null
  connect_p99_ms: number | null
  dropped_during_hold: number
  source_addresses: string[]
  /** RSS of the broker (summed over its processes) before the warm-up (in reports before the warm-up moved it: after) */
  rss_before_bytes: number | null
  /** with the connections open */
  rss_after_bytes: number | null
  /** (after - before) / connected */
  rss_per_connection_bytes: number | null
  rss_source: string | null
  /**
   * Culex nodes the suite started: V8 heap used after a full GC (summed over the nodes) with the
   * ramp's connections closed again (before) and open (after), and its growth per connection
   * (suite/gc-preload.ts). Both are read after the measured ramp (scenarios/connections.ts).
   */
  heap_before_bytes?: number | null
  heap_after_bytes?: number
  heap_per_connection_bytes?: number | null
  heap_nodes?: number
  /** broker CPU over the ramp; its per-unit figures are per connection opened */
  broker_cpu?: BrokerCpu
}

export interface ReportConfig {
  qos: QoS
  /** MQTT protocol level of the load clients (absent in reports older than it: 4) */
  protocol?: Protocol
  size_bytes: number
  duration_s: number
  warmup_s: number
  workers: number
  window: number
  pairs: number | null
  publishers: number
  subscribers: number
  rate_per_s: number | null
  connections: number | null
  pub_urls: string[]
  sub_urls: string[]
  /** message scenarios: the load clients' ids start with it (`<prefix>p<i>` publishers, `<prefix>s<j>` subscribers) */
  client_id_prefix?: string
  /** `persistent`: the subscribers kept a session during the run (ended after it) */
  persistent_sessions?: boolean
}

export interface ScenarioReport {
  tool: 'culex-bench'
  version: string
  scenario: ScenarioName
  started_at: string
  finished_at: string
  config: ReportConfig
  results: MessageResults | ConnectionResults
  valid: boolean
  invalid_reason: string | null
  /** QoS rules this run was judged against */
  allowed: { loss: boolean; duplicates: boolean }
  warnings: string[]
  generator: GeneratorCheck
}

export interface MachineInfo {
  nproc: number
  cpu_model: string
  ram_bytes: number
  os: string
  node: string
}

export interface TargetReport {
  name: string
  description: string
  status: 'ok' | 'skipped' | 'failed'
  reason: string | null
  pub_urls: string[]
  sub_urls: string[]
  runs: ScenarioReport[]
  errors: Array<{ scenario: string; qos: QoS | null; protocol?: Protocol; error: string }>
}

export interface SuiteReport {
  tool: 'culex-bench'
  version: string
  kind: 'suite'
  started_at: string
  finished_at: string
  machine: MachineInfo
  /** 1, 5 and 15 minute load averages when the suite started and ended: other work skews the figures */
  load_average: { start: number[]; end: number[] }
  config: {
    scenarios: ScenarioName[]
    qos: QoS[]
    /** QoS levels of the flood scenario (absent in reports older than it) */
    flood_qos?: QoS[]
    /** MQTT protocol levels run (absent in reports older than it: [4]) */
    protocols?: Protocol[]
    duration_s: number
    warmup_s: number
    size_bytes: number
    workers: number
    baseline: string
  }
  targets: TargetReport[]
}
