#!/usr/bin/env node
// Two builds' cross-node cost side by side (issue 15), robust on a shared machine: starts two 2-node
// clusters (each its own redis-server; `throughput` publishers on node A, subscribers on node B, as
// the suite's culex-2nodes target), one per broker CLI, warms both up, then runs the scenario
// against each in turn, ROUNDS times (the order swapped every round), SECONDS each, and reads the
// nodes' and Redis' utime + stime (/proc) around every run. A load swing hits both builds alike; the
// per-round ratios (second build over first) and their medians are the figures to quote.
// Usage: node scripts/bus-ab.mjs BASE_CLI NEW_CLI [rounds=6] [seconds=3] [scenario=throughput]
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { cpuUs, freePort, sleep, startNode, stopAll } from './lib/node-proc.mjs'
import { alternate, median } from './lib/rounds.mjs'

const [baseCli, newCli, rounds = '6', seconds = '3', scenario = 'throughput'] = process.argv.slice(2)
if (!newCli) {
  console.error('usage: node scripts/bus-ab.mjs BASE_CLI NEW_CLI [rounds=6] [seconds=3] [scenario=throughput]')
  process.exit(2)
}
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const cluster = async (cli) => {
  const port = await freePort()
  const redis = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', `${port}`, '--bind', '127.0.0.1'], { stdio: 'ignore' })
  await sleep(300)
  const args = (id) => ({ args: ['--redis-url', `redis://127.0.0.1:${port}`, '--node-id', id] })
  const a = await startNode(path.resolve(cli), args('ab-a'))
  const b = await startNode(path.resolve(cli), args('ab-b'))
  return { cli, redis, a, b, us: { a: [], b: [], redis: [] }, rate: [], p50: [], p99: [] }
}
const run = (c, keep) => {
  const pids = [c.a.proc.pid, c.b.proc.pid, c.redis.pid]
  const before = pids.map(cpuUs)
  const out = spawnSync(process.execPath, [bench, scenario, '--pub', c.a.url, '--sub', c.b.url, '--duration', seconds, '--warmup', '1', '--json', '--no-progress'], { encoding: 'utf8', maxBuffer: 1e8 })
  const after = pids.map(cpuUs)
  const r = JSON.parse(out.stdout).results
  if (!keep) return
  const per = (i) => +((after[i] - before[i]) / r.delivered_total).toFixed(2)
  c.us.a.push(per(0))
  c.us.b.push(per(1))
  c.us.redis.push(per(2))
  c.rate.push(Math.round(r.deliveries_per_s))
  c.p50.push(r.latency?.p50_ms ?? r.p50_ms ?? null)
  c.p99.push(r.latency?.p99_ms ?? r.p99_ms ?? null)
}
const x = await cluster(baseCli)
const y = await cluster(newCli)
alternate(x, y, +rounds, run)
await stopAll([x.a.proc, x.b.proc, y.a.proc, y.b.proc], 'SIGTERM')
x.redis.kill()
y.redis.kill()
const ratio = (f) => x.rate.map((_, i) => +(f(y, i) / f(x, i)).toFixed(3))
const nodes = (c, i) => c.us.a[i] + c.us.b[i]
const show = (c) => ({ cli: c.cli, usA: c.us.a, usB: c.us.b, usRedis: c.us.redis, rate: c.rate, p50: c.p50, p99: c.p99 })
console.log(JSON.stringify({
  scenario,
  base: show(x),
  new: show(y),
  nodesUsRatio: ratio(nodes),
  rateRatio: ratio((c, i) => c.rate[i]),
  median: { nodesUsRatio: median(ratio(nodes)), rateRatio: median(ratio((c, i) => c.rate[i])), usA: [median(x.us.a), median(y.us.a)], usB: [median(x.us.b), median(y.us.b)] },
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
}))
