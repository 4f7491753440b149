/** `culex-bench suite`: the same scenarios against Mosquitto and Culex, side by side. */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { DEFAULTS, parseIntOpt, parseNumberOpt, parseProtocolList, parseQosList, SCENARIOS, splitList, type Protocol, type QoS, type ScenarioName } from '../options.js'
import { Progress } from '../progress.js'
import { renderChart } from '../report/chart.js'
import { toJson } from '../report/json.js'
import { renderMarkdown } from '../report/markdown.js'
import { renderSuiteTable } from '../report/table.js'
import { TARGETS, findBin } from './brokers.js'
import { stopAll } from './process.js'
import { runSuite } from './run.js'

interface SuiteRaw {
  targets: string
  scenarios: string
  qos: QoS[]
  protocol: Protocol[]
  size: number
  duration: number
  warmup: number
  workers: number
  window: number
  pairs: number
  subscribers: number
  publishers: number
  rate: number
  floodQos: QoS[]
  floodPublishers: number
  floodSubscribers: number
  floodDrainTimeout: number
  groups: number
  members: number
  sharedPublishers: number
  connections: number
  connectWarmup: number
  connectConcurrency: number
  sourceAddresses: number
  drainTimeout: number
  resultsDir: string
  name: string
  write: boolean
  json?: boolean
  progress?: boolean
  brokerCli: string
  mosquitto: string
  redisServer: string
  mosquittoConf: string[]
}

const defaultBrokerCli = fileURLToPath(new URL('../../../broker/dist/cli.js', import.meta.url))
const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerSuite(program: Command): void {
  const names = TARGETS.map((t) => t.name)
  program
    .command('suite')
    .description('run the scenarios against Mosquitto, one Culex node, a 2-node Culex cluster and 3 nodes behind HAProxy')
    .option('--targets <names>', `targets, comma separated (${names.join(', ')}); the first is the baseline`, names.join(','))
    .option('--scenarios <names>', 'scenarios, comma separated', SCENARIOS.join(','))
    .option('--qos <list>', 'QoS level(s) for the message scenarios, e.g. 0,1,2', parseQosList, [1] as QoS[])
    .option('--protocol <list>', 'MQTT version(s) of the load clients, e.g. 3.1.1,5: every scenario runs once per version', parseProtocolList, [4] as Protocol[])
    .option('--size <bytes>', 'payload size', parseIntOpt('--size', 24), DEFAULTS.size)
    .option('--duration <s>', 'measured seconds per scenario', parseNumberOpt('--duration', 0.1), DEFAULTS.durationS)
    .option('--warmup <s>', 'warmup seconds per scenario', parseNumberOpt('--warmup', 0), DEFAULTS.warmupS)
    .option('--workers <n>', 'generator threads', parseIntOpt('--workers', 1, 64), DEFAULTS.workers)
    .option('--window <n>', 'in-flight QoS 1/2 publishes per publisher', parseIntOpt('--window', 1, 65535), DEFAULTS.window)
    .option('--pairs <n>', 'throughput pairs', parseIntOpt('--pairs', 1), 4)
    .option('--subscribers <n>', 'fanout subscribers (1 publisher)', parseIntOpt('--subscribers', 1), 20)
    .option('--publishers <n>', 'fanin publishers (1 wildcard subscriber)', parseIntOpt('--publishers', 1), 10)
    .option('--rate <n>', 'latency scenario rate, msg/s', parseNumberOpt('--rate', 0.1), DEFAULTS.rate)
    .option('--flood-qos <list>', 'QoS level(s) of the flood scenario', parseQosList, [0, 1] as QoS[])
    .option('--flood-publishers <n>', 'flood publishers (no in-flight window)', parseIntOpt('--flood-publishers', 1), 1)
    .option('--flood-subscribers <n>', 'flood subscribers on the one topic', parseIntOpt('--flood-subscribers', 1), 50)
    .option(
      '--flood-drain-timeout <s>',
      'flood: longest wait for acknowledgements and deliveries after the load stops (a QoS 1 flood leaves up to 65,000 publishes per publisher to deliver to every subscriber)',
      parseNumberOpt('--flood-drain-timeout', 0),
      60,
    )
    .option('--groups <n>', 'shared scenario: $share groups', parseIntOpt('--groups', 1), DEFAULTS.groups)
    .option('--members <n>', 'shared scenario: members per group', parseIntOpt('--members', 1), DEFAULTS.members)
    .option('--shared-publishers <n>', 'shared scenario: publishers', parseIntOpt('--shared-publishers', 1), 4)
    .option('--connections <n>', 'connections scenario: idle connections', parseIntOpt('--connections', 1), DEFAULTS.connections)
    .option('--connect-warmup <n>', 'connections scenario: connections opened and closed first on every target, not measured (0 = none)', parseIntOpt('--connect-warmup', 0, 1_000_000), DEFAULTS.connectWarmup)
    .option('--source-addresses <n>', 'connections scenario: loopback source addresses to spread over', parseIntOpt('--source-addresses', 1, 60_000), 1)
    .option('--connect-concurrency <n>', 'connection attempts in flight', parseIntOpt('--connect-concurrency', 1), DEFAULTS.connectConcurrency)
    .option('--drain-timeout <s>', 'longest wait for deliveries after each run', parseNumberOpt('--drain-timeout', 0), DEFAULTS.drainTimeoutS)
    .option('--results-dir <dir>', 'where the JSON, Markdown and SVG files go', 'bench/results')
    .option('--name <name>', 'base name of the result files', 'suite')
    .option('--no-write', 'do not write result files')
    .option('--json', 'print the whole suite report as one JSON document on stdout')
    .option('--progress', 'show the live progress line on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'never show the progress line')
    .option('--broker-cli <path>', 'the Culex CLI', defaultBrokerCli)
    .option('--mosquitto <bin>', 'mosquitto executable', 'mosquitto')
    .option('--redis-server <bin>', 'redis-server executable', 'redis-server')
    .option('--mosquitto-conf <line>', 'extra Mosquitto configuration line (repeatable)', collect, [] as string[])
    .action(async (o: SuiteRaw) => {
      const wanted = splitList(o.targets)
      const targets = wanted.map((n) => {
        const t = TARGETS.find((x) => x.name === n)
        if (!t) throw new Error(`unknown target "${n}" (known: ${names.join(', ')})`)
        return t
      })
      const scenarios = splitList(o.scenarios).map((s) => {
        if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario "${s}"`)
        return s as ScenarioName
      })
      const progress = Progress.auto(o.progress)
      const onSignal = (): void => {
        process.stderr.write('\nculex-bench: interrupted, stopping brokers\n')
        void stopAll().finally(() => process.exit(130))
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const report = await runSuite({
        targets,
        scenarios,
        qos: o.qos,
        protocols: o.protocol,
        base: {
          insecure: false,
          size: o.size,
          durationS: o.duration,
          warmupS: o.warmup,
          workers: o.workers,
          // a generator thread of its own per scenario: nothing of the target before carries over
          freshEngine: true,
          window: o.window,
          keepaliveS: DEFAULTS.keepaliveS,
          connectConcurrency: o.connectConcurrency,
          drainTimeoutS: o.drainTimeout,
          pairs: o.pairs,
          // fanout: 1 publisher to --subscribers; fanin: --publishers to 1 wildcard subscriber
          publishers: 1,
          subscribers: o.subscribers,
          groups: o.groups,
          members: o.members,
          rate: o.rate,
          connections: o.connections,
          connectWarmup: o.connectWarmup,
          sourceAddresses: o.sourceAddresses,
          progress,
        },
        faninPublishers: o.publishers,
        flood: { qos: o.floodQos, publishers: o.floodPublishers, subscribers: o.floodSubscribers, drainTimeoutS: o.floodDrainTimeout },
        sharedPublishers: o.sharedPublishers,
        ctx: { brokerCli: o.brokerCli, mosquittoBin: findBin(o.mosquitto), redisBin: findBin(o.redisServer), mosquittoConf: o.mosquittoConf },
        log: (line) => process.stderr.write(`${line}\n`),
      })
      const table = renderSuiteTable(report)
      if (o.write) {
        mkdirSync(o.resultsDir, { recursive: true })
        const base = path.join(o.resultsDir, o.name)
        writeFileSync(`${base}.json`, toJson(report))
        writeFileSync(`${base}.svg`, renderChart(report))
        writeFileSync(`${base}.md`, renderMarkdown(report, `${path.basename(base)}.svg`))
        process.stderr.write(`wrote ${base}.json, ${base}.md, ${base}.svg\n`)
      }
      // invalid figures are findings; a target that failed to start or a scenario that errored is a failure
      if (report.targets.some((t) => t.status === 'failed' || t.errors.length > 0)) process.exitCode = 1
      if (o.json) {
        process.stderr.write(`${table}\n`)
        process.stdout.write(toJson(report))
      } else process.stdout.write(`${table}\n`)
    })
}
