#!/usr/bin/env node
// Broker CPU per delivery, MQTT 5 against 3.1.1 (issue 11), robust on a shared machine: one node,
// the bench run against it again and again, alternating 3.1.1 and 5 (order swapped every round),
// the node's utime + stime (/proc/PID/stat) around each run divided by the run's delivered_total.
// The same node process serves both: no JIT or start-up difference, and a load change hits both.
// Usage: node scripts/v5-cost.mjs [scenario=throughput] [rounds=6] [seconds=3] [broker dist dir] [bench dist dir]
// Prints one JSON line: µs per delivery per run, medians, the median of the per-round v5/3.1.1
// ratios, the rates and the generator's own CPU per delivery (from the bench's report).
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'

const [scenario = 'throughput', rounds = '6', seconds = '3', brokerDist = 'packages/broker/dist', benchDist = 'packages/bench/dist'] = process.argv.slice(2)
const port = 21994
const ticks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return +f[11] + +f[12] // utime, stime (clock ticks, 100/s)
}
const node = spawn(process.execPath, [`${brokerDist}/cli.js`, 'start', '--host', '127.0.0.1', '--mqtt-port', String(port), '--ws-port', '0', '--http-port', String(port + 1), '--allow-anonymous', 'true', '--max-connects-per-s-per-ip', '0', '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] })
for (let i = 0; ; i++) {
  const up = await new Promise((r) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)))
    s.on('error', () => r(false))
  })
  if (up) break
  if (i > 200) throw new Error('the node did not start')
  await new Promise((r) => setTimeout(r, 100))
}
const out = { us: { 4: [], 5: [] }, rate: { 4: [], 5: [] }, generatorUs: { 4: [], 5: [] } }
const run = (protocol, keep) => {
  const before = ticks(node.pid)
  const args = [`${benchDist}/cli.js`, scenario, '--url', `mqtt://127.0.0.1:${port}`, '--protocol', protocol, '--duration', seconds, '--warmup', '1', '--no-progress', '--json']
  const report = JSON.parse(spawnSync(process.execPath, args, { encoding: 'utf8' }).stdout)
  const after = ticks(node.pid)
  const r = report.results
  if (!keep) return
  out.us[protocol].push(+(((after - before) / 100) * 1e6 / r.delivered_total).toFixed(2))
  out.rate[protocol].push(Math.round(r.deliveries_per_s))
  out.generatorUs[protocol].push(+((report.generator.cpu_user_ms + report.generator.cpu_system_ms) * 1e3 / r.delivered_total).toFixed(2))
}
run('4', false)
run('5', false)
for (let i = 0; i < +rounds; i++) for (const p of i % 2 ? ['5', '4'] : ['4', '5']) run(p, true)
node.kill('SIGINT')
const median = (a) => {
  const s = [...a].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const pct = (x) => +((x - 1) * 100).toFixed(1)
console.log(JSON.stringify({
  scenario,
  brokerDist,
  benchDist,
  ...out,
  median: { 4: median(out.us[4]), 5: median(out.us[5]) },
  v5OverV311Pct: pct(median(out.us[5].map((v, i) => v / out.us[4][i]))),
  rateV5OverV311Pct: pct(median(out.rate[5].map((v, i) => v / out.rate[4][i]))),
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
}))
