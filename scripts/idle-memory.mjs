#!/usr/bin/env node
// What one idle MQTT connection holds on one in-process Culex node (issue 15).
// Usage: node --expose-gc scripts/idle-memory.mjs [N=1000] [--v5] [--sub] [--proxy] [--redis URL] [--snapshot [--retainers]]  (after npm run build)
// (--redis: the node in cluster mode on that Redis, anonymous clients allowed; a redis-server you started on loopback)
// Starts a node (no persistence backend beyond the default), opens N raw TCP connections from a
// child process (so client-side objects are not counted), each sends one MQTT 3.1.1 CONNECT
// (clean, keepalive 60 s; MQTT 5 with --v5), with --sub one SUBSCRIBE (QoS 1, a topic of its own:
// an idle IoT device waiting for commands), with --proxy after a PROXY v1 header (as behind
// HAProxy), and stays idle. Prints V8 heap and external/arrayBuffers deltas per
// connection after a full GC, and the node's CPU per connect while they connected (the 200 ms
// settle after the last CONNACK included); with --snapshot, the heap-snapshot self size per constructor, and with
// --retainers, anonymous closures/contexts/arrays by the object and property that holds them.
// The --child mode is also the client side of packages/broker/test/node/idle-memory.test.ts.
import { fork } from 'node:child_process'
import { writeHeapSnapshot } from 'node:v8'
import { readFileSync, unlinkSync } from 'node:fs'

if (process.argv[2] === '--child') {
  const net = await import('node:net')
  const [port, n, level, sub, proxy] = [Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6] === 'sub', process.argv[7] === 'proxy']
  const socks = []
  let acked = 0
  const frame = (type, body) => Buffer.concat([Buffer.from([type, body.length]), body])
  for (let i = 0; i < n; i++) {
    const id = Buffer.from(`idle-${i}`)
    // level 5: a Property Length of 0 after the keepalive (CONNECT) and the packet id (SUBSCRIBE)
    const head = level === 5 ? [0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 2, 0, 60, 0] : [0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60]
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    // up at the CONNACK, or with --sub at the SUBACK (every packet here is shorter than 128 bytes)
    let got = Buffer.alloc(0)
    s.on('data', (d) => {
      got = Buffer.concat([got, d])
      while (got.length >= 2 && got.length >= 2 + got[1]) {
        if (got[0] === (sub ? 0x90 : 0x20) && ++acked === n) process.send('up')
        got = got.subarray(2 + got[1])
      }
    })
    // --proxy: a PROXY protocol v1 header first, as HAProxy sends it (a real address of its own)
    if (proxy) s.write(`PROXY TCP4 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} 127.0.0.1 ${10000 + (i % 50000)} 1883\r\n`)
    s.write(frame(0x10, Buffer.concat([Buffer.from([...head, 0, id.length]), id])))
    if (sub) {
      const topic = Buffer.from(`dev/${i}/cmd`)
      s.write(frame(0x82, Buffer.concat([Buffer.from([0, 1, ...(level === 5 ? [0] : []), 0, topic.length]), topic, Buffer.from([1])])))
    }
    socks.push(s)
  }
  process.on('message', () => { for (const s of socks) s.destroy(); process.exit(0) })
} else {
  if (!globalThis.gc) throw new Error('run with node --expose-gc')
  const distAt = process.argv.indexOf('--dist')
  const dist = distAt > 0 ? new URL(`file://${process.argv[distAt + 1].replace(/\/$/, '')}/`) : new URL('../packages/broker/dist/', import.meta.url)
  const { loadConfig, startNode } = await import(new URL('main.js', dist).href)
  const n = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1000)
  const level = process.argv.includes('--v5') ? 5 : 4
  const sub = process.argv.includes('--sub')
  const proxy = process.argv.includes('--proxy')
  const snap = process.argv.includes('--snapshot')
  const redisAt = process.argv.indexOf('--redis')
  const redisUrl = redisAt > 0 ? process.argv[redisAt + 1] : undefined
  const node = await startNode(loadConfig({ flags: { host: '127.0.0.1', mqtt_port: 0, ws_port: 0, http_port: 0, log_level: 'silent', max_connects_per_s_per_ip: 0, ...(proxy ? { trusted_proxies: '127.0.0.1' } : {}), ...(redisUrl ? { redis_url: redisUrl, allow_anonymous: true } : {}) } }))
  const measure = async () => {
    for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)) }
    const m = process.memoryUsage()
    return { heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, file: snap ? writeHeapSnapshot() : undefined }
  }
  // warm up: one round of N connections, so lazy module state and the code V8 compiles for the
  // connect path are not counted (with 20 connections, ~0.7 KB/conn of JIT code was)
  await run(n)
  const before = await measure()
  const cpu0 = process.cpuUsage()
  const child = await run(n, true)
  const cpu = process.cpuUsage(cpu0)
  const after = await measure()
  const per = (k) => ((after[k] - before[k]) / n).toFixed(0)
  console.log(`N=${n} MQTT ${level === 5 ? '5' : '3.1.1'}${sub ? ', 1 subscription each,' : ''}${proxy ? ' behind a PROXY header,' : ''} per idle connection: heap ${per('heap')} B, external ${per('external')} B (arrayBuffers ${per('arrayBuffers')} B), rss ${per('rss')} B; node CPU ${((cpu.user + cpu.system) / n).toFixed(0)} µs per connect`)
  if (snap) {
    const a = byCtor(before.file), b = byCtor(after.file)
    const rows = [...b].map(([k, v]) => [k, (v.size - (a.get(k)?.size ?? 0)) / n, (v.count - (a.get(k)?.count ?? 0)) / n])
      .filter((r) => r[1] >= 4).sort((x, y) => y[1] - x[1])
    console.log('bytes/conn  count/conn  constructor (heap snapshot self size)')
    for (const [k, s, c] of rows.slice(0, 40)) console.log(`${s.toFixed(0).padStart(10)}  ${c.toFixed(2).padStart(10)}  ${k}`)
    if (process.argv.includes('--retainers')) {
      const want = (t, nm) => t === 'array' || (t === 'closure' && nm === '') || (t === 'object' && nm === 'system / Context') || (t === 'object' && nm === 'Object')
      const ra = byRetainer(before.file, want), rb = byRetainer(after.file, want)
      const rr = [...rb].map(([k, v]) => [k, (v.size - (ra.get(k)?.size ?? 0)) / n, (v.count - (ra.get(k)?.count ?? 0)) / n]).filter((r) => r[1] >= 16).sort((x, y) => y[1] - x[1])
      for (const [k, sz, c] of rr.slice(0, 60)) console.log(`${sz.toFixed(0).padStart(10)}  ${c.toFixed(2).padStart(8)}  ${k}`)
    }
    unlinkSync(before.file); unlinkSync(after.file)
  }
  child.send('bye')
  await node.close({ drain: false })
  process.exit(0)

  async function run(count, keep = false) {
    const c = fork(new URL(import.meta.url).pathname, ['--child', String(node.ports.mqtt), String(count), String(level), sub ? 'sub' : '', proxy ? 'proxy' : ''])
    await new Promise((r) => c.once('message', r))
    await new Promise((r) => setTimeout(r, 200))
    if (keep) return c
    c.send('bye')
    await new Promise((r) => c.once('exit', r))
    // past a keepalive sweep (seam/keepalive-sweep.ts SWEEP_MS), which lets the closed clients go
    await new Promise((r) => setTimeout(r, 600))
  }
}

function byCtor(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'))
  const f = s.snapshot.meta.node_fields, types = s.snapshot.meta.node_types[0]
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((x) => f.indexOf(x))
  const out = new Map()
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const t = types[s.nodes[i + ti]]
    const name = t === 'object' || t === 'closure' ? `${t === 'closure' ? 'closure ' : ''}${s.strings[s.nodes[i + ni]]}` : `(${t})`
    const e = out.get(name) ?? { size: 0, count: 0 }
    e.size += s.nodes[i + si]; e.count++
    out.set(name, e)
  }
  return out
}

// for anonymous closures, contexts and arrays: `parent.edge` of the first retainer found
// add retainer labels: for nodes of a given kind, "parentName.edge"
function byRetainer(file, want) {
  const s = JSON.parse(readFileSync(file, 'utf8'))
  const f = s.snapshot.meta.node_fields, nt = s.snapshot.meta.node_types[0], ef = s.snapshot.meta.edge_fields, et = s.snapshot.meta.edge_types[0]
  const [ti, ni, si, eci] = ['type', 'name', 'self_size', 'edge_count'].map((x) => f.indexOf(x))
  const [eti, eni, eto] = ['type', 'name_or_index', 'to_node'].map((x) => ef.indexOf(x))
  const label = new Map()
  let e = 0
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const pname = s.strings[s.nodes[i + ni]]
    for (let k = 0; k < s.nodes[i + eci]; k++, e += ef.length) {
      const to = s.edges[e + eto]; if (label.has(to)) continue
      const t = et[s.edges[e + eti]]; if (t === 'weak' || t === 'shortcut') continue
      const nm = t === 'element' || t === 'hidden' ? `[${s.edges[e + eni]}]` : s.strings[s.edges[e + eni]]
      label.set(to, `${pname.slice(0, 30)}.${nm}`)
    }
  }
  const out = new Map()
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const t = nt[s.nodes[i + ti]], name = s.strings[s.nodes[i + ni]]
    if (!want(t, name)) continue
    const key = `${t} ${name.slice(0, 20)} <- ${label.get(i) ?? '?'}`
    const x = out.get(key) ?? { size: 0, count: 0 }; x.size += s.nodes[i + si]; x.count++; out.set(key, x)
  }
  return out
}
