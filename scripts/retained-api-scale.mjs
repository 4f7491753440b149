#!/usr/bin/env node
// What the admin API's list of retained messages costs with many of them (the dashboard asks
// `GET /api/v1/retained?filter=#&limit=200` every 5 s): starts a redis-server and one node of the
// given broker CLI on loopback (with `memory`: one node alone, no Redis), stores N retained
// messages of 200 bytes under `devices/<i>/state`, then K times each of `#`, `devices/<random i>/#`
// and `#` after storing one new retained topic (limit 200); prints per filter the request time
// (median and range), Redis' and the node's CPU per request (/proc), and the longest a QoS 0 round
// trip through the node waited meanwhile (a probe every 5 ms: how long the node's event loop or
// Redis was held).
// Usage: node scripts/retained-api-scale.mjs [CLI=packages/broker/dist/cli.js] [N=100000] [K=20] [cluster|memory]
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { clearInterval, setInterval } from 'node:timers'
import { connectMqtt } from './lib/mqtt-client.mjs'
import { cpuUs, sleep, startNode, startRedis, stopAll } from './lib/node-proc.mjs'

const [cliArg = 'packages/broker/dist/cli.js', nArg = '100000', kArg = '20', mode = 'cluster'] = process.argv.slice(2)
const cli = path.resolve(cliArg)
const [n, k] = [Number(nArg), Number(kArg)]
const token = 'retained-api-scale-0123456789'
const redis = mode === 'memory' ? undefined : await startRedis()
const node = await startNode(cli, { args: [...(redis ? ['--redis-url', redis.url] : []), '--node-id', 'ras', '--admin-token', token] })
const connect = () => connectMqtt(node.url)
const pub = await connect()
const payload = Buffer.alloc(200, 'x')
for (let i = 0; i < n; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => pub.publishAsync(`devices/${i + j}/state`, payload, { qos: 1, retain: true })))
}
await sleep(4000)
// the probe: a QoS 0 message to itself every 5 ms; the longest wait of one
const probe = await connect()
await probe.subscribeAsync('probe', { qos: 0 })
let sentAt = 0
let worst = 0
probe.on('message', () => {
  worst = Math.max(worst, performance.now() - sentAt)
  sentAt = 0
})
const timer = setInterval(() => {
  if (sentAt !== 0) worst = Math.max(worst, performance.now() - sentAt)
  else {
    sentAt = performance.now()
    probe.publish('probe', 'p')
  }
}, 5)
const out = []
let added = 0
for (const kind of ['#', 'devices/<i>/#', '# after a new topic']) {
  await sleep(200)
  worst = 0
  const times = []
  const [rStart, nStart] = [(redis ? cpuUs(redis.proc.pid) : 0), cpuUs(node.proc.pid)]
  for (let r = 0; r < k; r++) {
    if (kind === '# after a new topic') await pub.publishAsync(`devices/new-${added++}/state`, payload, { qos: 1, retain: true })
    const filter = kind.startsWith('#') ? '#' : `devices/${Math.floor(Math.random() * n)}/#`
    const t0 = performance.now()
    const res = await globalThis.fetch(`http://127.0.0.1:${node.httpPort}/api/v1/retained?filter=${encodeURIComponent(filter)}&limit=200`, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.json()
    times.push(performance.now() - t0)
    if (res.status !== 200 || (kind.startsWith('#') && body.total !== n + added)) throw new Error(`unexpected answer ${res.status} total ${body.total}`)
  }
  const [redisMs, nodeMs] = [((redis ? cpuUs(redis.proc.pid) : 0) - rStart) / 1000 / k, (cpuUs(node.proc.pid) - nStart) / 1000 / k]
  times.sort((a, b) => a - b)
  out.push({ filter: kind, median_ms: +times[Math.floor(k / 2)].toFixed(1), ms: `${times[0].toFixed(1)}-${times[k - 1].toFixed(1)}`, redis_cpu_ms: +redisMs.toFixed(1), node_cpu_ms: +nodeMs.toFixed(1), worst_probe_ms: +worst.toFixed(1) })
}
clearInterval(timer)
console.log(JSON.stringify({ cli: cliArg, retained: n, requests: k, results: out }))
await probe.endAsync()
await pub.endAsync()
await stopAll([node.proc])
redis?.proc.kill()
