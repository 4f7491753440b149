/** Commander option sets shared by the sub-commands, and their translation into a ScenarioConfig. */
import { readFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import {
  COUNT_DEFAULTS,
  DEFAULTS,
  parseIntOpt,
  parseNumberOpt,
  parseProtocol,
  parseQos,
  splitList,
  validateConfig,
  type Protocol,
  type QoS,
  type ScenarioConfig,
  type ScenarioName,
} from './options.js'
import { Progress } from './progress.js'

export interface RawOptions {
  url?: string
  pub?: string
  sub?: string
  ca?: string
  insecure?: boolean
  username?: string
  password?: string
  qos: QoS
  protocol: Protocol
  size: number
  duration: number
  warmup: number
  workers: number
  window: number
  keepalive: number
  connectConcurrency: number
  drainTimeout: number
  pairs?: number
  publishers?: number
  subscribers?: number
  groups?: number
  members?: number
  rate?: number
  connections?: number
  connectWarmup?: number
  sourceAddresses?: number
  metricsUrl?: string
  brokerPid?: string
  json?: boolean
  progress?: boolean
  injectSeqGap?: number
}

/** Options every scenario (and the suite) takes. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--qos <n>', 'QoS of publishes and subscriptions: 0, 1 or 2', parseQos, DEFAULTS.qos)
    .option('--protocol <version>', 'MQTT version of the load clients: 3.1.1 (or 4) or 5', parseProtocol, DEFAULTS.protocol)
    .option('--size <bytes>', 'payload size in bytes (at least 24)', parseIntOpt('--size', 24, 256 * 1024 * 1024), DEFAULTS.size)
    .option('--duration <s>', 'measured seconds (connections: how long to hold)', parseNumberOpt('--duration', 0.1), DEFAULTS.durationS)
    .option('--warmup <s>', 'seconds of load before measuring', parseNumberOpt('--warmup', 0), DEFAULTS.warmupS)
    .option('--workers <n>', 'generator threads (1 = main thread only)', parseIntOpt('--workers', 1, 64), DEFAULTS.workers)
    .option('--window <n>', 'in-flight QoS 1/2 publishes per publisher (Mosquitto drops QoS 2 beyond its max_inflight_messages, default 20)', parseIntOpt('--window', 1, 65535), DEFAULTS.window)
    .option('--keepalive <s>', 'MQTT keepalive of the load clients', parseIntOpt('--keepalive', 0, 65535), DEFAULTS.keepaliveS)
    .option('--connect-concurrency <n>', 'connection attempts in flight at once', parseIntOpt('--connect-concurrency', 1), DEFAULTS.connectConcurrency)
    .option('--drain-timeout <s>', 'longest wait for acknowledgements and deliveries after the run', parseNumberOpt('--drain-timeout', 0), DEFAULTS.drainTimeoutS)
    .option('--json', 'print the whole report as one JSON document on stdout')
    .option('--progress', 'show the live progress line on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'never show the progress line')
}

/** Where to connect, and how. */
export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--url <urls>', 'broker URL(s) for publishers and subscribers (mqtt://, mqtts://, ws://, wss://), comma separated')
    .option('--pub <urls>', 'publisher broker URL(s), comma separated, assigned round robin')
    .option('--sub <urls>', 'subscriber broker URL(s), comma separated, assigned round robin')
    .option('--ca <file>', 'CA certificate (PEM) for mqtts:// and wss://')
    .option('--insecure', 'do not verify the TLS certificate')
    .option('--username <name>', 'MQTT user name')
    .option('--password <secret>', 'MQTT password')
    .addOption(new Option('--inject-seq-gap <n>', 'test only: skip a sequence number every n messages').argParser(parseIntOpt('--inject-seq-gap', 2)).hideHelp())
}

export function toConfig(scenario: ScenarioName, o: RawOptions): ScenarioConfig {
  const counts = COUNT_DEFAULTS[scenario]
  const both = splitList(o.url)
  const cfg: ScenarioConfig = {
    scenario,
    pubUrls: o.pub ? splitList(o.pub) : both,
    subUrls: o.sub ? splitList(o.sub) : both,
    insecure: Boolean(o.insecure),
    qos: o.qos,
    protocol: o.protocol,
    size: o.size,
    durationS: o.duration,
    warmupS: o.warmup,
    workers: o.workers,
    window: o.window,
    keepaliveS: o.keepalive,
    connectConcurrency: o.connectConcurrency,
    drainTimeoutS: o.drainTimeout,
    pairs: o.pairs ?? counts.pairs,
    publishers: o.publishers ?? counts.publishers,
    subscribers: o.subscribers ?? counts.subscribers,
    groups: o.groups ?? DEFAULTS.groups,
    members: o.members ?? DEFAULTS.members,
    rate: o.rate ?? DEFAULTS.rate,
    connections: o.connections ?? DEFAULTS.connections,
    connectWarmup: o.connectWarmup ?? DEFAULTS.connectWarmup,
    sourceAddresses: o.sourceAddresses ?? 1,
    metricsUrls: splitList(o.metricsUrl),
    brokerPids: splitList(o.brokerPid).map((p) => parseIntOpt('--broker-pid', 1)(p)),
    progress: Progress.auto(o.progress),
  }
  if (o.ca) cfg.ca = readFileSync(o.ca, 'utf8')
  if (o.username !== undefined) cfg.username = o.username
  if (o.password !== undefined) cfg.password = o.password
  if (o.injectSeqGap) cfg.injectSeqGapEvery = o.injectSeqGap
  validateConfig(cfg)
  return cfg
}
