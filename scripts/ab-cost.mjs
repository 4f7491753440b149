#!/usr/bin/env node
// Broker CPU per delivery of two builds of one node, compared on a shared machine (issue 15): both
// nodes run at once (memory mode), the bench is run against each in turn, A then B, B then A, ...,
// and each run's node utime + stime (/proc/PID/stat) is divided by its delivered_total. A load
// change between rounds hits both builds; the figure to quote is the median of the per-round B/A
// ratios (`roundsPct`, pool the rounds of several invocations), as scripts/v5-cost.mjs does for
// MQTT 5 against 3.1.1. `connections`: the node's CPU over the whole bench run (a warm-up ramp of
// 1000 and the measured ramp of 1000, each closed again; half a second after the bench exits for
// the last closes) per 1000 connect+close, and (`rampUs`) the bench's own figure, the CPU per
// connect over the measured ramp alone.
// Usage: node scripts/ab-cost.mjs A_CLI B_CLI [scenario=throughput] [rounds=6] [seconds=3] [bench options]
//   A_CLI, B_CLI: a build's dist/cli.js (a copy of packages/broker/dist with a node_modules link beside it)
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { cpuUs, startNode, stopAll } from './lib/node-proc.mjs'
import { alternate, median, pct } from './lib/rounds.mjs'

const [a, b, scenario = 'throughput', rounds = '6', seconds = '3', ...extra] = process.argv.slice(2)
if (!a || !b) {
  console.error('usage: node scripts/ab-cost.mjs A_CLI B_CLI [scenario] [rounds] [seconds] [bench options]')
  process.exit(2)
}
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const nodes = { A: await startNode(path.resolve(a)), B: await startNode(path.resolve(b)) }
const conns = scenario === 'connections'
const out = { us: { A: [], B: [] }, rate: { A: [], B: [] }, ...(conns ? { rampUs: { A: [], B: [] } } : {}) }
const run = (k, keep) => {
  const { proc, url } = nodes[k]
  const before = cpuUs(proc.pid)
  const args = conns
    ? [bench, scenario, '--url', url, '--duration', '0.1', '--connect-warmup', '1000', '--broker-pid', `${proc.pid}`, '--no-progress', '--json', ...extra]
    : [bench, scenario, '--url', url, '--duration', seconds, '--warmup', '1', '--no-progress', '--json', ...extra]
  const report = JSON.parse(spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1e8 }).stdout)
  // connections: the node closes the last ramp's sockets after the bench has gone
  if (conns) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500)
  const after = cpuUs(proc.pid)
  if (!keep) return
  const r = report.results
  if (conns) {
    out.us[k].push(Math.round(((after - before) / (r.connected + r.warmup_connections)) * 1000))
    out.rate[k].push(Math.round(r.connects_per_s))
    out.rampUs[k].push(Math.round(r.broker_cpu?.broker_us_per_delivery ?? NaN))
    return
  }
  out.us[k].push(+((after - before) / r.delivered_total).toFixed(2))
  out.rate[k].push(Math.round(r.deliveries_per_s))
}
alternate('A', 'B', +rounds, run)
await stopAll([nodes.A.proc, nodes.B.proc])
console.log(JSON.stringify({
  scenario,
  A: a,
  B: b,
  ...out,
  median: { A: median(out.us.A), B: median(out.us.B) },
  ...(conns ? { rampPct: pct(median(out.rampUs.B.map((v, i) => v / out.rampUs.A[i]))) } : {}),
  roundsPct: out.us.B.map((v, i) => pct(v / out.us.A[i])),
  bOverAPct: pct(median(out.us.B.map((v, i) => v / out.us.A[i]))),
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
}))
