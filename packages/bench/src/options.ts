/** Scenario configuration: types, defaults and validation of CLI values. */
export type QoS = 0 | 1 | 2
/** MQTT protocol level of the load clients: 4 = 3.1.1, 5 = MQTT 5.0 */
export type Protocol = 4 | 5
export type ScenarioName = 'throughput' | 'persistent' | 'fanout' | 'fanin' | 'latency' | 'flood' | 'shared' | 'connections'
export const SCENARIOS: readonly ScenarioName[] = ['throughput', 'persistent', 'fanout', 'fanin', 'latency', 'flood', 'shared', 'connections']
export const MESSAGE_SCENARIOS: readonly ScenarioName[] = ['throughput', 'persistent', 'fanout', 'fanin', 'latency', 'flood', 'shared']

/** A process the run watches (peak RSS, CPU after the load stops), with every process it started. */
export interface WatchedProcess {
  name: string
  pid: number
}

export interface ScenarioConfig {
  scenario: ScenarioName
  pubUrls: string[]
  subUrls: string[]
  /** PEM text of the CA for mqtts:// and wss:// */
  ca?: string
  insecure: boolean
  username?: string
  password?: string
  qos: QoS
  protocol: Protocol
  size: number
  durationS: number
  warmupS: number
  workers: number
  /**
   * run even a single generator thread in a worker of its own, made for this scenario (the suite):
   * the main thread's JIT and heap, shaped by the target before, would otherwise carry over
   */
  freshEngine?: boolean
  /** in-flight QoS 1/2 publishes per publisher */
  window: number
  keepaliveS: number
  connectConcurrency: number
  drainTimeoutS: number
  pairs: number
  publishers: number
  subscribers: number
  /** shared scenario: `$share/<group>/...` groups, and members in each */
  groups: number
  members: number
  /** latency scenario: total messages per second across publishers */
  rate: number
  connections: number
  /** connections scenario: connections opened and closed before the measured ramp (a warm broker, as the message scenarios' warm-up), 0 = none */
  connectWarmup: number
  /** connections scenario: loopback source addresses to spread over (1 = kernel's choice, more as ports require) */
  sourceAddresses: number
  metricsUrls: string[]
  brokerPids: number[]
  /** broker processes (and their children) whose CPU is measured (and, flood, whose memory is watched); brokerPids when this is unset */
  brokerProcesses?: WatchedProcess[]
  /** connections scenario: the folder where the suite's Culex nodes answer GC requests (heap.ts) */
  heapGcDir?: string
  progress: boolean
  /** prefix for the progress line, e.g. the suite target */
  label?: string
  /** test only: publishers skip one sequence number every N messages */
  injectSeqGapEvery?: number
}

export const DEFAULTS = {
  qos: 1 as QoS,
  protocol: 4 as Protocol,
  size: 64,
  durationS: 5,
  warmupS: 1,
  workers: 1,
  window: 20,
  keepaliveS: 60,
  connectConcurrency: 50,
  drainTimeoutS: 10,
  rate: 1000,
  connections: 1000,
  connectWarmup: 1000,
  groups: 2,
  members: 3,
}

/** Per-scenario default counts. */
export const COUNT_DEFAULTS: Record<ScenarioName, { pairs: number; publishers: number; subscribers: number }> = {
  throughput: { pairs: 4, publishers: 4, subscribers: 4 },
  persistent: { pairs: 4, publishers: 4, subscribers: 4 },
  fanout: { pairs: 1, publishers: 1, subscribers: 20 },
  fanin: { pairs: 1, publishers: 10, subscribers: 1 },
  latency: { pairs: 1, publishers: 1, subscribers: 1 },
  flood: { pairs: 1, publishers: 1, subscribers: 50 },
  shared: { pairs: 0, publishers: 4, subscribers: 0 },
  connections: { pairs: 0, publishers: 0, subscribers: 0 },
}

export function parseQos(v: string): QoS {
  if (v === '0' || v === '1' || v === '2') return Number(v) as QoS
  throw new Error(`--qos must be 0, 1 or 2 (got "${v}")`)
}

export function parseProtocol(v: string): Protocol {
  const s = v.trim()
  if (s === '4' || s === '3.1.1') return 4
  if (s === '5' || s === '5.0') return 5
  throw new Error(`--protocol must be 3.1.1 (or 4) or 5 (got "${v}")`)
}

export function parseProtocolList(v: string): Protocol[] {
  return [...new Set(v.split(',').map(parseProtocol))]
}

export function parseQosList(v: string): QoS[] {
  return v.split(',').map((s) => parseQos(s.trim()))
}

export function parseIntOpt(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`${name} must be an integer between ${min} and ${max} (got "${v}")`)
    }
    return n
  }
}

export function parseNumberOpt(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min} (got "${v}")`)
    return n
  }
}

export function splitList(v: string | undefined): string[] {
  if (!v) return []
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

export function validateConfig(c: ScenarioConfig): void {
  if (c.scenario !== 'connections') {
    if (c.pubUrls.length === 0) throw new Error('no publisher target: give --url or --pub')
    if (c.subUrls.length === 0) throw new Error('no subscriber target: give --url or --sub')
  } else if (c.pubUrls.length + c.subUrls.length === 0) {
    throw new Error('no target: give --url')
  }
  if (c.window < 1 || c.window > 65535) throw new Error('--window must be between 1 and 65535')
  if (c.durationS <= 0) throw new Error('--duration must be > 0')
  if (c.warmupS < 0) throw new Error('--warmup must be >= 0')
  if (c.scenario === 'latency' && c.rate <= 0) throw new Error('--rate must be > 0')
}
