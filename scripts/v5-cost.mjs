#!/usr/bin/env node
// Broker CPU per delivery, MQTT 5 against 3.1.1 (issue 11), robust on a shared machine: one node,
// the bench run against it again and again, alternating 3.1.1 and 5 (order swapped every round),
// the node's utime + stime (/proc/PID/stat) around each run divided by the run's delivered_total.
// The same node process serves both: no JIT or start-up difference, and a load change hits both.
// Usage: node scripts/v5-cost.mjs [scenario=throughput] [rounds=6] [seconds=3] [broker dist dir] [bench dist dir]
// Prints one JSON line: µs per delivery per run, medians, each round's v5/3.1.1 ratio (as %) and
// their median, the rates and the generator's own CPU per delivery (from the bench's report).
// Several invocations' rounds pool: the median of all their `roundsPct` is the figure to quote.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { cpuUs, startNode, stopAll } from './lib/node-proc.mjs'
import { alternate, median, pct } from './lib/rounds.mjs'

const [scenario = 'throughput', rounds = '6', seconds = '3', brokerDist = 'packages/broker/dist', benchDist = 'packages/bench/dist'] = process.argv.slice(2)
const { proc: node, url } = await startNode(path.resolve(`${brokerDist}/cli.js`))
const out = { us: { 4: [], 5: [] }, rate: { 4: [], 5: [] }, generatorUs: { 4: [], 5: [] } }
const run = (protocol, keep) => {
  const before = cpuUs(node.pid)
  const args = [`${benchDist}/cli.js`, scenario, '--url', url, '--protocol', protocol, '--duration', seconds, '--warmup', '1', '--no-progress', '--json']
  const report = JSON.parse(spawnSync(process.execPath, args, { encoding: 'utf8' }).stdout)
  const after = cpuUs(node.pid)
  const r = report.results
  if (!keep) return
  out.us[protocol].push(+((after - before) / r.delivered_total).toFixed(2))
  out.rate[protocol].push(Math.round(r.deliveries_per_s))
  out.generatorUs[protocol].push(+((report.generator.cpu_user_ms + report.generator.cpu_system_ms) * 1e3 / r.delivered_total).toFixed(2))
}
alternate('4', '5', +rounds, run)
await stopAll([node])
console.log(JSON.stringify({
  scenario,
  brokerDist,
  benchDist,
  ...out,
  median: { 4: median(out.us[4]), 5: median(out.us[5]) },
  roundsPct: out.us[5].map((v, i) => pct(v / out.us[4][i])),
  v5OverV311Pct: pct(median(out.us[5].map((v, i) => v / out.us[4][i]))),
  rateV5OverV311Pct: pct(median(out.rate[5].map((v, i) => v / out.rate[4][i]))),
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
}))
