#!/usr/bin/env node
// MQTT 5 against 3.1.1 on one QoS 1 round trip (issue 11), robust on a shared machine: one node,
// a 3.1.1 publisher/subscriber pair and a v5 pair on it, raw sockets sending prebuilt packets
// (the same client work for both versions: the subscriber's PUBACK is the 2-byte form of both).
// - serial: one message in flight, the two versions alternating message by message (a load swing
//   hits both); the median of publish -> delivery and publish -> PUBACK per version, and the
//   median of the per-pair differences of the PUBACK times
// - mixed: both pairs at once, `window` messages in flight each: the two versions share the
//   node's loop turns, so a version whose PUBLISH -> PUBACK path took one more turn or write
//   would show it as a whole turn more (hundreds of µs under load)
// Usage: node scripts/v5-roundtrip.mjs [serial messages=10000] [mixed seconds=3] [window=20] [broker dist dir]
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { startNode, stopAll } from './lib/node-proc.mjs'

const [count = '10000', seconds = '3', window = '20', brokerDist = 'packages/broker/dist'] = process.argv.slice(2)
const mp = createRequire(import.meta.url)('mqtt-packet')
const { proc: node, port } = await startNode(path.resolve(`${brokerDist}/cli.js`))
const connect = (id, v) =>
  new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setNoDelay(true)
    s.once('error', reject)
    s.once('data', () => resolve(s))
    s.write(mp.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId: id, clean: true, keepalive: 60 }, { protocolVersion: v }))
  })
const now = () => Number(process.hrtime.bigint()) / 1e3
const median = (a) => +[...a].sort((x, y) => x - y)[Math.floor(a.length / 2)].toFixed(1)
const pairs = {}
for (const v of [4, 5]) {
  const topic = `rt/${v}`
  const pub = await connect(`rt-pub-${v}`, v)
  const sub = await connect(`rt-sub-${v}`, v)
  await new Promise((r) => (sub.once('data', r), sub.write(mp.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }, { protocolVersion: v }))))
  // the packet id of a delivery: after the 2-byte header (a 64-byte payload: 1-byte length) and the topic
  pairs[v] = { v, pub, sub, topic, idAt: 4 + topic.length }
}
const publish = (p, id, payload = Buffer.alloc(64)) => p.pub.write(mp.generate({ cmd: 'publish', topic: p.topic, qos: 1, messageId: id, payload }, { protocolVersion: p.v }))
const ack = (p, buf, at) => p.sub.write(Buffer.from([0x40, 2, buf[at + p.idAt], buf[at + p.idAt + 1]]))

// serial, alternating; each data event is one packet (one message in flight)
const serial = { 4: { d: [], k: [] }, 5: { d: [], k: [] } }
const once = (p, keep) =>
  new Promise((resolve) => {
    const t0 = now()
    let td = 0
    let tk = 0
    const end = () => td && tk && (keep && (serial[p.v].d.push(td - t0), serial[p.v].k.push(tk - t0)), resolve())
    p.sub.once('data', (b) => ((td = now()), ack(p, b, 0), end()))
    p.pub.once('data', () => ((tk = now()), end()))
    publish(p, 1)
  })
for (let i = 0; i < +count + 2000; i++) for (const v of i % 2 ? [5, 4] : [4, 5]) await once(pairs[v], i >= 2000)
const diffs = serial[5].k.map((k, i) => k - serial[4].k[i])

/** `fn(buffer, start, end)` for each whole packet read from `sock` (packets under 128 bytes: a 1-byte remaining length) */
function frames(sock, fn) {
  let held = Buffer.alloc(0)
  sock.on('data', (chunk) => {
    const b = held.length ? Buffer.concat([held, chunk]) : chunk
    let at = 0
    while (at + 2 <= b.length && at + 2 + b[at + 1] <= b.length) {
      fn(b, at, at + 2 + b[at + 1])
      at += 2 + b[at + 1]
    }
    held = b.subarray(at)
  })
}

// mixed: each publisher keeps `window` in flight; a delivery carries its send time
const mixed = { 4: { d: [], k: [], n: 0 }, 5: { d: [], k: [], n: 0 } }
let measuring = false
let stop = false
for (const p of Object.values(pairs)) {
  const sentAt = new Map()
  let next = 1
  const send = () => {
    const id = next
    next = next >= 60000 ? 1 : next + 1
    const payload = Buffer.alloc(64)
    const t = now()
    payload.writeDoubleBE(t)
    sentAt.set(id, t)
    publish(p, id, payload)
  }
  frames(p.sub, (b, at, end) => {
    ack(p, b, at)
    if (measuring) mixed[p.v].d.push(now() - b.readDoubleBE(end - 64))
  })
  frames(p.pub, (b, at) => {
    const id = (b[at + 2] << 8) | b[at + 3]
    if (measuring) {
      mixed[p.v].k.push(now() - sentAt.get(id))
      mixed[p.v].n++
    }
    sentAt.delete(id)
    if (!stop) send()
  })
  for (let i = 0; i < +window; i++) send()
}
await new Promise((r) => setTimeout(r, 1000))
measuring = true
await new Promise((r) => setTimeout(r, +seconds * 1000))
measuring = false
stop = true
await new Promise((r) => setTimeout(r, 300))
for (const p of Object.values(pairs)) {
  p.pub.destroy()
  p.sub.destroy()
}
await stopAll([node])
const fig = (m) => ({ deliverUs: median(m.d), pubackUs: median(m.k) })
console.log(
  JSON.stringify({
    serial: { 4: fig(serial[4]), 5: fig(serial[5]), pubackV5MinusV311Us: median(diffs) },
    mixed: { 4: { ...fig(mixed[4]), perS: Math.round(mixed[4].n / +seconds) }, 5: { ...fig(mixed[5]), perS: Math.round(mixed[5].n / +seconds) } },
  }),
)
