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
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const [cliArg, scenario = 'throughput', ...extra] = process.argv.slice(2)
if (!cliArg) {
  console.error('usage: node scripts/node-cpu.mjs BROKER_CLI [throughput|fanout|fanin|connections] [bench options]')
  process.exit(2)
}
const cli = path.resolve(cliArg)
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const free = () => new Promise((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)) }) })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const env = { ...process.env, CULEX_ALLOW_ANONYMOUS: 'true', CULEX_MAX_CONNECTS_PER_S_PER_IP: '0', CULEX_MAX_CONNECTIONS: '0' }
const [m, w, h] = [await free(), await free(), await free()]
const pre = process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : []
const node = spawn(process.execPath, [...pre, cli, 'start', '--host', '127.0.0.1', '--mqtt-port', `${m}`, '--ws-port', `${w}`, '--http-port', `${h}`, '--log-level', 'warn'], { env, stdio: ['ignore', 'inherit', 'inherit'] })
for (let i = 0; i < 300; i++) {
  try {
    if ((await globalThis.fetch(`http://127.0.0.1:${h}/readyz`)).ok) break
  } catch {
    // not listening yet
  }
  await sleep(100)
}
const url = `mqtt://127.0.0.1:${m}`
// [utime, stime] in clock ticks (fields 14-15)
const ticks = () => { const f = readFileSync(`/proc/${node.pid}/stat`, 'utf8').split(') ')[1].split(' '); return [Number(f[11]), Number(f[12])] }
const tick = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))
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
node.kill('SIGINT')
await new Promise((res) => node.on('exit', res))
