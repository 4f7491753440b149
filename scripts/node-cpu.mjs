#!/usr/bin/env node
// Broker CPU per delivery of one Culex node (memory mode), as docs/performance.md measures it:
// starts the node of the given broker CLI, runs SCENARIO (throughput, fanout, fanin or
// connections) once to warm it up (WARM s, default 2), then DUR (default 5) s, and prints the
// node's utime + stime (/proc/PID/stat) per delivery (connections: per 1000 connect+close, the
// scenario's `connects/s`), user and system apart, with the run's rate and the load average.
// Extra arguments go to the bench command (e.g. --qos 0). PROF=dir runs the node under
// --cpu-prof (scripts/profile-summary.mjs reads the profile). Alternate two builds to compare:
//   node scripts/node-cpu.mjs /tmp/base/dist/cli.js throughput
//   node scripts/node-cpu.mjs packages/broker/dist/cli.js throughput
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { cpuTicks, startNode, stopAll, TICK_US } from './lib/node-proc.mjs'

const [cliArg, scenario = 'throughput', ...extra] = process.argv.slice(2)
if (!cliArg) {
  console.error('usage: node scripts/node-cpu.mjs BROKER_CLI [throughput|fanout|fanin|connections] [bench options]')
  process.exit(2)
}
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const pre = process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : []
const { proc: node, url } = await startNode(path.resolve(cliArg), { pre })
const ticks = () => cpuTicks(node.pid)
const tick = TICK_US
const conns = scenario === 'connections'
// connections: the first run's ramp (after its own warm-up) warms the node; the measured one has none
const run = (d, warm) => JSON.parse(execFileSync(process.execPath, [bench, scenario, '--url', url, '--duration', `${d}`, ...(conns ? ['--connect-warmup', warm ? '1000' : '0'] : ['--warmup', '0']), '--json', '--no-progress', ...extra], { encoding: 'utf8', maxBuffer: 1e8 }))
run(conns ? 0.1 : Number(process.env.WARM ?? 2), true)
const load0 = os.loadavg()[0]
const t0 = ticks()
const rep = run(conns ? 0.1 : Number(process.env.DUR ?? 5), false)
const t1 = ticks()
const r = rep.results ?? rep
const count = conns ? (r.connected ?? r.connections ?? 1000) / 1000 : r.delivered_total
const per = (i) => +(((t1[i] - t0[i]) * tick) / count).toFixed(2)
const out = { build: cliArg, scenario, load: +load0.toFixed(1), user: per(0), sys: per(1), total: +(per(0) + per(1)).toFixed(2), unit: conns ? 'us per 1000 connections' : 'us per delivery' }
if (conns) out.connects_per_s = r.connects_per_s ?? r.connect_rate
else Object.assign(out, { deliveries_per_s: Math.round(r.deliveries_per_s), p50_ms: r.p50_ms, p99_ms: r.p99_ms })
console.log(JSON.stringify(out))
if (!count) console.log(Object.keys(r))
await stopAll([node])
