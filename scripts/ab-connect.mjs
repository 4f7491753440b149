#!/usr/bin/env node
// Broker CPU per connect+close of two builds of one node (memory mode), both benched AT THE SAME
// TIME each round (issue 15, connects/s): on a shared machine whose load swings within seconds, the
// alternating rounds of ab-cost.mjs gave per-round ratios from -42% to +56%; two benches started
// together see the same load. Each round: one `connections` bench per node (a warm-up ramp of N
// and a measured ramp of N, each closed again), the node's utime + stime (/proc/PID/stat) over it
// (half a second after the bench for the last closes) per connection, and the bench's own CPU per
// connect over the measured ramp; round 0 is a warm-up, not kept. Quote the median of the
// per-round B/A ratios (`medianRatio`, `medianRampRatio`).
// Usage: node scripts/ab-connect.mjs A_CLI B_CLI [rounds=8] [connections=2000]
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { cpuUs, startNode, stopAll, sleep } from './lib/node-proc.mjs'
import { median as med } from './lib/rounds.mjs'
const [a, b, rounds = '8', conns = '2000'] = process.argv.slice(2)
if (!a || !b) {
  console.error('usage: node scripts/ab-connect.mjs A_CLI B_CLI [rounds] [connections]')
  process.exit(2)
}
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const nodes = { A: await startNode(path.resolve(a)), B: await startNode(path.resolve(b)) }
const runBench = (n) => new Promise((resolve) => {
  const p = spawn(process.execPath, [bench, 'connections', '--url', n.url, '--duration', '0.1', '--connect-warmup', conns, '--connections', conns, '--json', '--no-progress', '--broker-pid', `${n.proc.pid}`], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  p.on('exit', () => resolve(JSON.parse(out).results))
})
const res = { A: [], B: [], rampA: [], rampB: [] }
for (let i = 0; i <= Number(rounds); i++) {
  const c0 = { A: cpuUs(nodes.A.proc.pid), B: cpuUs(nodes.B.proc.pid) }
  const [ra, rb] = await Promise.all([runBench(nodes.A), runBench(nodes.B)])
  await sleep(500)
  const c1 = { A: cpuUs(nodes.A.proc.pid), B: cpuUs(nodes.B.proc.pid) }
  if (i === 0) continue // warm-up round
  res.A.push(Math.round((c1.A - c0.A) / (ra.connected + ra.warmup_connections)))
  res.B.push(Math.round((c1.B - c0.B) / (rb.connected + rb.warmup_connections)))
  res.rampA.push(ra.broker_cpu?.broker_us_per_delivery)
  res.rampB.push(rb.broker_cpu?.broker_us_per_delivery)
}
await stopAll([nodes.A.proc, nodes.B.proc])
const ratios = res.B.map((v, i) => +(v / res.A[i]).toFixed(3))
const rampRatios = res.rampB.map((v, i) => +(v / res.rampA[i]).toFixed(3))
console.log(JSON.stringify({ A: a, B: b, ...res, ratios, medianRatio: med(ratios), rampRatios, medianRampRatio: med(rampRatios), medA: med(res.A), medB: med(res.B), load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') }))
