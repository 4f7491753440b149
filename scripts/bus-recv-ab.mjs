#!/usr/bin/env node
// The receiving node's CPU per cross-node delivery, two builds side by side (issue 15), without a
// sending node: in `throughput` on two nodes (bus-ab.mjs) node B's batch sizes follow node A's
// timing, and B's CPU per delivery moves with them by more than a receive-side change. Here this
// script is node A: it publishes bus batches (bus-codec.ts, BATCH messages each, a run of
// BATCH/4 per topic as A's publishers make them) straight to each build's Redis, and 4 raw MQTT
// 3.1.1 subscribers on the build's node (QoS 1, a PUBACK for each PUBLISH, one write per chunk
// read) take the deliveries. At most WINDOW batches are out (published, not yet all delivered), so
// every build gets the same batches at the pace it takes them. Each round runs both builds, the
// order swapped every round, reading the node's utime + stime (/proc) around MESSAGES deliveries;
// the per-round ratios (second build over first) and their median are the figures to quote.
// Usage: node scripts/bus-recv-ab.mjs BASE_CLI NEW_CLI [rounds=8] [messages=100000] [window=2] [batch=44]
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt-packet'
import { encodeBatch } from '../packages/broker/dist/cluster/bus-codec.js'
import { cpuTicks, freePort, sleep, startNode, stopAll, TICK_US } from './lib/node-proc.mjs'
import { alternate, median } from './lib/rounds.mjs'

const [baseCli, newCli, roundsArg = '8', messagesArg = '100000', windowArg = '2', batchArg = '44'] = process.argv.slice(2)
if (!newCli) {
  console.error('usage: node scripts/bus-recv-ab.mjs BASE_CLI NEW_CLI [rounds=8] [messages=100000] [window=2] [batch=44]')
  process.exit(2)
}
const BATCH = Number(batchArg)
const WINDOW = Number(windowArg)
const TOPICS = 4
const CHANNEL = 'culex:bus'
const payload = Buffer.alloc(64, 1)
// the same sender for every batch of this run: its broker id and a counter above any earlier run's
// (each subscriber drops a message whose counter it has seen: Aedes' per-client dedupe)
const brokerId = 'bench-recv-sender'
let counter = Date.now() * 1000

/** a raw MQTT subscriber: counts PUBLISHes, answers each QoS 1 one with a PUBACK */
async function subscriber(port, topic) {
  const sock = net.connect(port, '127.0.0.1')
  await new Promise((r) => sock.once('connect', r))
  sock.setNoDelay(true)
  const parser = mqtt.parser({ protocolVersion: 4 })
  const s = { received: 0, ready: undefined }
  const acks = []
  let subacked
  const subscribed = new Promise((r) => (subacked = r))
  parser.on('packet', (p) => {
    if (p.cmd === 'publish') {
      s.received++
      if (p.qos === 1) acks.push(mqtt.generate({ cmd: 'puback', messageId: p.messageId }))
    } else if (p.cmd === 'connack') {
      sock.write(mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }))
    } else if (p.cmd === 'suback') subacked()
  })
  sock.on('data', (chunk) => {
    parser.parse(chunk)
    if (acks.length > 0) sock.write(acks.length === 1 ? acks[0] : Buffer.concat(acks))
    acks.length = 0
    s.onData?.()
  })
  sock.write(mqtt.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `recv-${topic}-${port}`, keepalive: 0 }))
  await subscribed
  s.sock = sock
  return s
}

const cluster = async (cli) => {
  const port = await freePort()
  const redis = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', `${port}`, '--bind', '127.0.0.1'], { stdio: 'ignore' })
  await sleep(300)
  const node = await startNode(path.resolve(cli), { args: ['--redis-url', `redis://127.0.0.1:${port}`, '--node-id', 'recv-b'] })
  const pub = new Redis(port, '127.0.0.1')
  const subs = []
  for (let t = 0; t < TOPICS; t++) subs.push(await subscriber(node.port, `bench/recv/${t}`))
  return { cli, redis, node, pub, subs, seq: 0, us: [], userSys: [] }
}

/** batch number `seq` as node A's bus would send it: BATCH messages, a run per topic */
const origin = `recv${process.pid}`
function batchOf(seq) {
  const packets = []
  for (let t = 0; t < TOPICS; t++) {
    for (let i = 0; i < BATCH / TOPICS; i++) packets.push({ cmd: 'publish', brokerId, brokerCounter: ++counter, topic: `bench/recv/${t}`, payload, qos: 1, retain: false, dup: false, clientId: `pub-${t}` })
  }
  return encodeBatch(origin, packets, seq, seq)
}

/** deliver `messages` through `c`'s node, at most WINDOW batches out; resolves when all arrived */
function drive(c, messages) {
  return new Promise((resolve) => {
    const total = () => c.subs.reduce((n, s) => n + s.received, 0)
    const start = total()
    let sent = 0
    const pump = () => {
      const got = total() - start
      if (got >= messages) {
        for (const s of c.subs) s.onData = undefined
        return resolve()
      }
      while (sent < messages && sent - got < WINDOW * BATCH) {
        // each build's node sees its own numbers 1, 2, ... (none skipped: bus-order.ts)
        c.pub.publish(CHANNEL, batchOf(++c.seq))
        sent += BATCH
      }
    }
    for (const s of c.subs) s.onData = pump
    pump()
  })
}

const x = await cluster(baseCli)
const y = await cluster(newCli)
const messages = Number(messagesArg)
const runs = []
const runOne = async (c, keep) => {
  const pid = c.node.proc.pid
  const t0 = cpuTicks(pid)
  await drive(c, keep ? messages : messages / 2)
  const t1 = cpuTicks(pid)
  if (!keep) return
  c.us.push(+(((t1[0] - t0[0] + t1[1] - t0[1]) * TICK_US) / messages).toFixed(3))
  c.userSys.push([+(((t1[0] - t0[0]) * TICK_US) / messages).toFixed(2), +(((t1[1] - t0[1]) * TICK_US) / messages).toFixed(2)])
}
// alternate() runs synchronously: collect the order, then run it
alternate(x, y, Number(roundsArg), (c, keep) => runs.push([c, keep]))
for (const [c, keep] of runs) await runOne(c, keep)
for (const c of [x, y]) {
  for (const s of c.subs) s.sock.destroy()
  c.pub.disconnect()
}
await stopAll([x.node.proc, y.node.proc], 'SIGTERM')
x.redis.kill()
y.redis.kill()
const ratios = x.us.map((v, i) => +(y.us[i] / v).toFixed(3))
console.log(JSON.stringify({
  batch: BATCH,
  window: WINDOW,
  messages,
  base: { cli: baseCli, usPerDelivery: x.us, userSys: x.userSys },
  new: { cli: newCli, usPerDelivery: y.us, userSys: y.userSys },
  ratio: ratios,
  median: { ratio: median(ratios), us: [median(x.us), median(y.us)] },
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
}))
