#!/usr/bin/env node
/** culex-bench: load, fan-out and connection benchmarks for any MQTT broker. */
import { Command } from 'commander'
import { addRunOptions, addTargetOptions, toConfig, type RawOptions } from './cli-options.js'
import { DEFAULTS, parseIntOpt, parseNumberOpt, type ScenarioName } from './options.js'
import { toJson } from './report/json.js'
import { renderScenarioTable } from './report/table.js'
import { runScenario } from './scenarios/index.js'
import { registerSuite } from './suite/command.js'
import { VERSION } from './version.js'

/** Exit code of a run whose figures are invalid (losses or duplicates its QoS does not allow). */
export const EXIT_INVALID = 3

const program = new Command('culex-bench')
  .description('Load, fan-out, latency and connection benchmarks for any MQTT broker (plain MQTT 3.1.1)')
  .version(VERSION)
  .showHelpAfterError()

const count = (name: string) => parseIntOpt(name, 1, 1_000_000)

const SCENARIO_HELP: Record<Exclude<ScenarioName, never>, string> = {
  throughput: 'N publisher/subscriber pairs, each on its own topic, publishing as fast as the broker accepts',
  persistent: 'throughput with subscribers that keep a session (CONNECT clean 0): each QoS 1/2 message is stored for them until acknowledged; the sessions are ended after the run',
  fanout: 'P publishers (default 1) on one topic, M subscribers',
  fanin: 'N publishers on their own topics, one subscriber on a wildcard',
  latency: 'a fixed publish rate; end-to-end latency percentiles',
  shared: 'P publishers (default 4) on their own topics, G shared subscription groups `$share/g<k>/...` (default 2) of M members (default 3): each message to one member of each group; deliveries/s and the balance across members',
  flood: 'P publishers (default 1) write to one topic M subscribers (default 50) read, with no in-flight window (QoS 1: PUBACKs not awaited); rate, latency, QoS 0 dropped, peak broker RSS',
  connections: 'ramp to N concurrent idle connections; connects/s, failures, broker memory per connection',
}

for (const name of Object.keys(SCENARIO_HELP) as ScenarioName[]) {
  const cmd = addRunOptions(addTargetOptions(new Command(name).description(SCENARIO_HELP[name])))
  if (name === 'throughput' || name === 'persistent') cmd.option('--pairs <n>', 'publisher/subscriber pairs (default 4)', count('--pairs'))
  if (name === 'fanout') {
    cmd.option('--publishers <n>', 'publishers (default 1)', count('--publishers'))
    cmd.option('--subscribers <n>', 'subscribers (default 20)', count('--subscribers'))
  }
  if (name === 'flood') {
    cmd.option('--publishers <n>', 'publishers (default 1)', count('--publishers'))
    cmd.option('--subscribers <n>', 'subscribers (default 50)', count('--subscribers'))
  }
  if (name === 'shared') {
    cmd.option('--publishers <n>', 'publishers (default 4)', count('--publishers'))
    cmd.option('--groups <n>', 'shared subscription groups (default 2)', count('--groups'))
    cmd.option('--members <n>', 'members per group (default 3)', count('--members'))
  }
  if (name === 'fanin') cmd.option('--publishers <n>', 'publishers (default 10)', count('--publishers'))
  if (name === 'latency') {
    cmd.option('--rate <n>', 'messages per second, in total (default 1000)', parseNumberOpt('--rate', 0.1))
    cmd.option('--pairs <n>', 'publisher/subscriber pairs sharing the rate (default 1)', count('--pairs'))
  }
  if (name === 'connections' || name === 'flood') {
    cmd.option('--metrics-url <urls>', "broker /metrics URL(s) (prom-client process_resident_memory_bytes; flood: culex_messages_dropped_total too), summed")
    cmd.option('--broker-pid <pids>', 'broker PID(s) to read memory from /proc (flood: their child processes too, and CPU after the load)')
  }
  if (name === 'connections') {
    cmd.option('--connections <n>', 'idle connections to open (default 1000)', count('--connections'))
    cmd.option('--connect-warmup <n>', `connections opened and closed before the measured ramp, not measured (default ${DEFAULTS.connectWarmup}; 0 = none)`, parseIntOpt('--connect-warmup', 0, 1_000_000))
    cmd.option('--source-addresses <n>', 'spread connections over n loopback source addresses 127.0.0.1..n (more are added when ports run out)', parseIntOpt('--source-addresses', 1, 60_000))
  }
  cmd.action(async (opts: RawOptions) => {
    const cfg = toConfig(name, opts)
    const report = await runScenario(cfg)
    process.stdout.write(opts.json ? toJson(report) : renderScenarioTable(report) + '\n')
    if (!report.valid) process.exitCode = EXIT_INVALID
  })
  program.addCommand(cmd)
}

registerSuite(program)

program.parseAsync(process.argv).then(
  () => {
    // load clients are closed; a lingering handle must not keep the process up
    setTimeout(() => process.exit(), 2000).unref()
  },
  (err: Error) => {
    process.stderr.write(`culex-bench: ${err.message}\n`)
    process.exit(1)
  },
)
