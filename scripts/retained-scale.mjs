#!/usr/bin/env node
// What a wildcard SUBSCRIBE costs with many retained messages in cluster mode (docs/cluster.md
// "Retained messages at scale"): starts a redis-server and one node of the given broker CLI on
// loopback, stores N retained messages of 200 bytes under `devices/<i>/state` (QoS 1, 500 in
// flight), then K times: a fresh client SUBSCRIBEs to `devices/<random i>/#` and waits for its one
// retained message; prints the time until it arrived (median and range of the K) and the CPU
// (utime + stime, /proc) of Redis and of the node per SUBSCRIBE (connect and close included).
// Usage: node scripts/retained-scale.mjs [CLI=packages/broker/dist/cli.js] [N=100000] [K=20]
import path from 'node:path'
import { connectMqtt } from './lib/mqtt-client.mjs'
import { cpuUs, sleep, startNode, startRedis, stopAll } from './lib/node-proc.mjs'

const [cliArg = 'packages/broker/dist/cli.js', nArg = '100000', kArg = '20'] = process.argv.slice(2)
const cli = path.resolve(cliArg)
const [n, k] = [Number(nArg), Number(kArg)]
const redis = await startRedis()
const node = await startNode(cli, { args: ['--redis-url', redis.url, '--node-id', 'rs'] })
const connect = () => connectMqtt(node.url)
const pub = await connect()
const payload = Buffer.alloc(200, 'x')
const s0 = process.hrtime.bigint()
for (let i = 0; i < n; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => pub.publishAsync(`devices/${i + j}/state`, payload, { qos: 1, retain: true })))
}
const storeMs = Number(process.hrtime.bigint() - s0) / 1e6
await pub.endAsync()
await sleep(3000)
const rows = []
const [rStart, nStart] = [cpuUs(redis.proc.pid), cpuUs(node.proc.pid)]
for (let r = 0; r < k; r++) {
  const id = Math.floor(Math.random() * n)
  const c = await connect()
  const t0 = process.hrtime.bigint()
  const got = new Promise((resolve) => c.on('message', (topic) => topic === `devices/${id}/state` && resolve()))
  await c.subscribeAsync(`devices/${id}/#`, { qos: 0 })
  await got
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  rows.push({ ms })
  await c.endAsync()
}
// CPU over the K (connect, SUBSCRIBE, close each), per SUBSCRIBE: /proc counts in 10 ms ticks
const [redisMs, nodeMs] = [(cpuUs(redis.proc.pid) - rStart) / 1000 / k, (cpuUs(node.proc.pid) - nStart) / 1000 / k]
const ms = rows.map((x) => x.ms).sort((a, b) => a - b)
console.log(JSON.stringify({ cli: cliArg, retained: n, stored_per_s: Math.round(n / (storeMs / 1000)), subscribes: k, median_ms: +ms[Math.floor(k / 2)].toFixed(1), ms: `${ms[0].toFixed(1)}-${ms[k - 1].toFixed(1)}`, redis_cpu_ms_per_subscribe: +redisMs.toFixed(1), node_cpu_ms_per_subscribe: +nodeMs.toFixed(1) }))
await stopAll([node.proc])
redis.proc.kill()
