#!/usr/bin/env node
// CPU per cross-node delivery on each node of a 2-node cluster (as the suite's culex-2nodes target:
// one Redis, `throughput` publishers on node A, subscribers on node B): starts redis-server and the
// two nodes of the given broker CLI, runs `throughput` 2 s to warm up, then DUR (default 5) s, and
// prints utime+stime (/proc/PID/stat) of each node and of Redis per delivery, user and system
// apart, the nodes' read/write syscalls and context switches per 1000 deliveries, and messages
// per Redis PUBLISH (SCENARIO=shared etc. for another scenario). With a second argument the nodes run under --cpu-prof into that folder
// (scripts/profile-summary.mjs reads the profiles). CMDSTATS=1 also prints Redis' INFO commandstats of the window
// (calls and µs per command, a script's own commands included). Alternate two builds to compare them:
//   node scripts/bus-cpu.mjs /work/main/packages/broker/dist/cli.js
//   node scripts/bus-cpu.mjs packages/broker/dist/cli.js [/tmp/prof]
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { cpuTicks, cpuUs, freePort, sleep, startNode, stopAll, TICK_US } from './lib/node-proc.mjs'
const [cliArg, prof] = process.argv.slice(2)
if (!cliArg) {
  console.error('usage: node scripts/bus-cpu.mjs BROKER_CLI [PROFILE_DIR]')
  process.exit(2)
}
const cli = path.resolve(cliArg)
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const rport = await freePort()
const redis = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', `${rport}`, '--bind', '127.0.0.1'], { stdio: 'ignore' })
await sleep(300)
const node = async (id) => {
  const pre = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${id}.cpuprofile`] : []
  const { proc: c, url } = await startNode(cli, { pre, args: ['--redis-url', `redis://127.0.0.1:${rport}`, '--node-id', id] })
  return { c, url }
}
const a = await node('bench-a'), b = await node('bench-b')
const cpu = cpuUs
const scenario = process.env.SCENARIO ?? 'throughput'
const run = (d) => JSON.parse(execFileSync(process.execPath, [bench, scenario, '--pub', a.url, '--sub', b.url, '--duration', `${d}`, '--warmup', '0', '--json', '--no-progress'], { encoding: 'utf8', maxBuffer: 1e8 }))
run(2)
const pubs = () => Number(/cmdstat_publish:calls=(\d+)/.exec(execFileSync('redis-cli', ['-p', `${rport}`, 'info', 'commandstats'], { encoding: 'utf8' }))?.[1] ?? 0)
let p0 = pubs()
if (process.env.CMDSTATS) {
  execFileSync('redis-cli', ['-p', `${rport}`, 'config', 'resetstat'])
  p0 = 0
}
const io = (pid) => { const t = readFileSync(`/proc/${pid}/io`, 'utf8'); const g = (k) => Number(new RegExp(k + ': (\\d+)').exec(t)[1]); const st = readFileSync(`/proc/${pid}/status`, 'utf8'); const c = (k) => Number(new RegExp(k + ':\\s+(\\d+)').exec(st)[1]); return [g('syscr'), g('syscw'), c('voluntary_ctxt_switches'), c('nonvoluntary_ctxt_switches')] }
const ia0 = io(a.c.pid), ib0 = io(b.c.pid)
const ut = cpuTicks
const ua0 = ut(a.c.pid), ub0 = ut(b.c.pid)
const a0 = cpu(a.c.pid), b0 = cpu(b.c.pid), r0 = cpu(redis.pid)
const rep = run(Number(process.env.DUR ?? 5))
const ia1 = io(a.c.pid), ib1 = io(b.c.pid)
const ua1 = ut(a.c.pid), ub1 = ut(b.c.pid)
const p1 = pubs()
if (process.env.CMDSTATS) console.log(execFileSync('redis-cli', ['-p', `${rport}`, 'info', 'commandstats'], { encoding: 'utf8' }))
const a1 = cpu(a.c.pid), b1 = cpu(b.c.pid), r1 = cpu(redis.pid)
const del = rep.delivered_total ?? rep.results?.delivered_total ?? rep.deliveredTotal
console.log(JSON.stringify({ cli, delivered: del, usA: +((a1 - a0) / del).toFixed(2), usB: +((b1 - b0) / del).toFixed(2), usRedis: +((r1 - r0) / del).toFixed(2), msgsPerPublish: +(del / (p1 - p0)).toFixed(1), perKdel_A_rd_wr_vcs_ivcs: ia1.map((v, i) => Math.round(1000 * (v - ia0[i]) / del)), userSysA: ua1.map((v, i) => +((v - ua0[i]) * TICK_US / del).toFixed(1)), userSysB: ub1.map((v, i) => +((v - ub0[i]) * TICK_US / del).toFixed(1)), perKdel_B: ib1.map((v, i) => Math.round(1000 * (v - ib0[i]) / del)) }))
if (!del) console.log(Object.keys(rep))
await stopAll([a.c, b.c], 'SIGTERM')
redis.kill()
