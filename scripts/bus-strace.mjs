#!/usr/bin/env node
// Node A's system calls per bus batch in the 2-node `throughput` (issue 15): starts a 2-node cluster
// of one broker CLI (its own redis-server; publishers on A, subscribers on B, as bus-ab.mjs), runs
// the scenario, and traces A (`strace -f`, read/write/writev/epoll calls, the first bytes of each
// buffer) for SECONDS in the middle of the run. Classifies A's writes of bus batches (a Redis
// PUBLISH of more than 1 KB) and A's reads that begin with a pub/sub message, by channel: its own
// batches read back on `culex:bus`, progress lines, presence. strace slows A down (a ptrace stop
// per call): the counts per batch are the figure, not the rate.
// With NODE=b in the environment, B is traced instead (its own progress lines read back; per bus
// batch written by A is then unknown: per batch read, `read: batch from a peer`).
// Usage: node scripts/bus-strace.mjs CLI [seconds=2]
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { freePort, sleep, startNode, stopAll } from './lib/node-proc.mjs'

const [cli, seconds = '2'] = process.argv.slice(2)
if (!cli) {
  console.error('usage: node scripts/bus-strace.mjs CLI [seconds=2]')
  process.exit(2)
}
const bench = new URL('../packages/bench/dist/cli.js', import.meta.url).pathname
const port = await freePort()
const redis = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', `${port}`, '--bind', '127.0.0.1'], { stdio: 'ignore' })
await sleep(300)
const args = (id) => ({ args: ['--redis-url', `redis://127.0.0.1:${port}`, '--node-id', id] })
const a = await startNode(path.resolve(cli), args('st-a'))
const b = await startNode(path.resolve(cli), args('st-b'))
const out = `/tmp/bus-strace-${process.pid}.txt`
const load = spawn(process.execPath, [bench, 'throughput', '--pub', a.url, '--sub', b.url, '--duration', String(+seconds + 4), '--warmup', '1', '--json', '--no-progress'], { stdio: ['ignore', 'pipe', 'inherit'] })
let json = ''
load.stdout.on('data', (d) => (json += d))
await sleep(3000)
const trace = spawn('strace', ['-f', '-qq', '-s', '80', '-e', 'trace=read,write,writev,readv,epoll_wait,epoll_pwait', '-o', out, '-p', String((process.env.NODE === 'b' ? b : a).proc.pid)], { stdio: 'ignore' })
await sleep(+seconds * 1000)
trace.kill('SIGINT')
await new Promise((r) => trace.on('exit', r))
await new Promise((r) => load.on('exit', r))
await stopAll([a.proc, b.proc], 'SIGTERM')
redis.kill()
spawnSync('true')

const lines = readFileSync(out, 'utf8').split('\n')
const count = {}
const add = (k) => (count[k] = (count[k] ?? 0) + 1)
for (const l of lines) {
  const m = /^\d+\s+(\w+)\((\d+), (.*)\)\s+=\s+(-?\d+)/.exec(l)
  if (!m) continue
  const [, call, , rest, ret] = m
  add(call)
  if (call === 'write' || call === 'writev') {
    if (/publish/i.test(rest) && /culex:bus(:n:[0-9a-f]+)?\\r\\n\$\d{4,}/.test(rest)) add('write: bus batch PUBLISH')
  }
  if (call === 'read' && +ret > 0) {
    const head = rest.slice(0, 100)
    if (!/^"\*[34]\\r\\n\$[78]\\r\\np?message/.test(head)) add(/^":\d+\\r\\n/.test(head) ? 'read: integer reply (PUBLISH)' : 'read: other (clients, replies)')
    else if (head.includes('progress')) add('read: progress line')
    else if (head.includes('presence')) add('read: presence')
    else if (head.includes('probe')) add('read: lag probe')
    else if (head.includes('culex:bus\\r\\n')) add(process.env.NODE === 'b' ? 'read: batch from a peer' : 'read: batch on culex:bus (own, back)')
    else if (head.includes('culex:bus:n:')) add('read: batch from a peer')
    else add('read: other pub/sub message')
  }
  if (call === 'read' && +ret < 0) add('read: EAGAIN')
}
const r = JSON.parse(json).results
const batches = count[process.env.NODE === 'b' ? 'read: batch from a peer' : 'write: bus batch PUBLISH'] ?? 0
console.log(`${cli}: rate under strace ${Math.round(r.deliveries_per_s)}/s; ${seconds} s traced; ${process.env.NODE === 'b' ? 'B traced, reads of bus batches' : 'bus batches written by A'}: ${batches}`)
for (const [k, v] of Object.entries(count).sort()) console.log(`  ${k.padEnd(40)} ${String(v).padStart(7)}  ${batches ? (v / batches).toFixed(2) : '-'} per batch`)
