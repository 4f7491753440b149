#!/usr/bin/env node
// CPU per connect+close in a 2-node cluster (issue 15: cluster connects): redis-server and two nodes
// of one build on loopback; `rounds` bench `connections` ramps of N against node A (a warm-up round
// first, not kept); per round the CPU (utime + stime, /proc) of A, of B (which hears A's $SYS client
// notices) and of Redis, per connect+close, and Redis' commands per connect+close (INFO
// commandstats). With PROFDIR, node A runs under --cpu-prof and writes its profile there on exit.
// Usage: node scripts/cluster-connect-cpu.mjs [CLI=packages/broker/dist/cli.js] [rounds=4] [N=2000] [PROFDIR]
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { cpuUs, freePort, sleep, startNode, stopAll } from './lib/node-proc.mjs'
import { median } from './lib/rounds.mjs'

const [cli = 'packages/broker/dist/cli.js', rounds = '4', n = '2000', profDir] = process.argv.slice(2)
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const port = await freePort()
const redisProc = spawn('redis-server', ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(path.join(tmpdir(), 'ccpu-'))], { stdio: 'ignore' })
const redisUrl = `redis://127.0.0.1:${port}`
for (let i = 0; ; i++) {
  if (await new Promise((r) => spawn('redis-cli', ['-p', `${port}`, 'ping'], { stdio: 'ignore' }).on('exit', (code) => r(code === 0)))) break
  if (i > 50) throw new Error('redis-server did not start')
  await sleep(100)
}
const admin = new Redis(redisUrl)
const args = ['--redis-url', redisUrl]
const a = await startNode(path.resolve(cli), { args: [...args, '--node-id', 'ca'], pre: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] })
const b = await startNode(path.resolve(cli), { args: [...args, '--node-id', 'cb'] })
const runBench = () =>
  new Promise((resolve) => {
    const p = spawn(process.execPath, [bench, 'connections', '--url', a.url, '--duration', '0.1', '--connect-warmup', '0', '--connections', n, '--json', '--no-progress'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('exit', () => resolve(JSON.parse(out).results))
  })
const calls = async () => {
  const stats = await admin.info('commandstats')
  let total = 0
  for (const m of stats.matchAll(/calls=(\d+)/g)) total += Number(m[1])
  return total
}
const out = { A: [], B: [], redis: [], commands: [], rate: [] }
for (let i = 0; i <= Number(rounds); i++) {
  const c0 = [cpuUs(a.proc.pid), cpuUs(b.proc.pid), cpuUs(redisProc.pid), await calls()]
  const r = await runBench()
  await sleep(500)
  const c1 = [cpuUs(a.proc.pid), cpuUs(b.proc.pid), cpuUs(redisProc.pid), await calls()]
  if (i === 0) continue
  const per = (k) => Math.round((c1[k] - c0[k]) / r.connected)
  out.A.push(per(0))
  out.B.push(per(1))
  out.redis.push(per(2))
  out.commands.push(+((c1[3] - c0[3]) / r.connected).toFixed(1))
  out.rate.push(Math.round(r.connects_per_s ?? 0))
}
await stopAll([a.proc, b.proc])
admin.disconnect()
redisProc.kill()
console.log(JSON.stringify({ cli, ...out, medA: median(out.A), medB: median(out.B), medRedis: median(out.redis), medCommands: median(out.commands) }))
