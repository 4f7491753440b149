/**
 * `culex cluster up` with 2 nodes: real redis-server and HAProxy on free loopback ports.
 * Through HAProxy: MQTT, MQTT/TLS with the generated CA, MQTT over WSS (mqtt.js and a real
 * headless Chromium), the client's real address at the node via PROXY protocol v2, failover
 * when a node dies, then `culex cluster status` and `culex cluster down`.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createConnection, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { MqttClient } from 'mqtt'
import { chromium } from 'playwright-core'
import { REPO_ROOT, killAll, logLines, sleep, tempDir, waitFor } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { clusterUp, type UpCluster } from '../helpers/cluster-up.js'

let cluster: UpCluster
let ca: Buffer

beforeAll(async () => {
  // a killed node stays down for the failover test (cluster up restarts it after this delay;
  // supervision itself is tested in supervise.test.ts)
  cluster = await clusterUp(2, ['--log-level', 'debug', '--allow-anonymous', 'true', '--restart-delay-ms', '60000'])
  ca = readFileSync(cluster.state().certs.ca)
}, 120_000)

afterAll(async () => {
  await closeAllClients()
  await cluster?.down()
  await killAll()
}, 60_000)

const nodeLogs = (): Array<Record<string, unknown>> => cluster.state().nodes.flatMap((n) => logLines(readFileSync(n.log, 'utf8')))

async function roundTrip(url: string, opts: Parameters<typeof mqttConnect>[1] = {}): Promise<void> {
  const sub = await mqttConnect(url, opts)
  const got = collect(sub)
  const topic = `rt/${Math.random().toString(16).slice(2)}`
  await sub.subscribeAsync(topic, { qos: 1 })
  const pub = await mqttConnect(url, opts)
  await pub.publishAsync(topic, 'ping', { qos: 1 })
  await waitFor(() => got.length === 1, 5000, `round trip over ${url}`)
  expect(got[0]).toMatchObject({ topic, payload: 'ping' })
  await Promise.all([sub.endAsync(), pub.endAsync()])
}

/** HAProxy's view of each server: svname -> { status, check } for a backend */
async function haproxyServers(backend: string): Promise<Record<string, { status: string; check: string }>> {
  const text = await (await fetch(`http://127.0.0.1:${cluster.ports.stats}/;csv`)).text()
  const [head, ...rows] = text.replace(/^# /, '').trim().split('\n')
  const cols = head!.split(',')
  const at = (r: string[], c: string): string => r[cols.indexOf(c)] ?? ''
  const out: Record<string, { status: string; check: string }> = {}
  for (const r of rows.map((l) => l.split(','))) {
    if (at(r, 'pxname') === backend && !['BACKEND', 'FRONTEND'].includes(at(r, 'svname'))) {
      out[at(r, 'svname')] = { status: at(r, 'status'), check: at(r, 'check_status') }
    }
  }
  return out
}

describe('culex cluster up behind HAProxy', () => {
  it('prints where everything listens and `cluster ready`, records the Redis URL in cluster.json, and `cluster status` lists the live nodes with client counts', async () => {
    const out = cluster.proc.text()
    expect(out).toContain(`mqtt://127.0.0.1:${cluster.ports.mqtt}`)
    expect(out).toContain(`mqtts://127.0.0.1:${cluster.ports.tls}`)
    expect(out).toContain(`wss://127.0.0.1:${cluster.ports.wss}/mqtt`)
    expect(out).toContain(`http://127.0.0.1:${cluster.ports.stats}/`)
    expect(out).toMatch(/culex-1 +mqtt 127\.0\.0\.1:\d+/)
    const state = cluster.state()
    expect(state.status).toBe('ready')
    expect(state.redis_url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/)
    expect(existsSync(join(cluster.dir, 'redis', 'appendonlydir'))).toBe(true) // AOF on

    const c = await mqttConnect(`mqtt://127.0.0.1:${cluster.ports.mqtt}`, { clientId: 'status-probe' })
    // without flags, from the cluster folder's cluster.json
    const run = cluster.cli(['cluster', 'status', '--dir', cluster.dir])
    expect((await run.exited).code).toBe(0)
    expect(run.text()).toMatch(/2 live nodes, 1 client\b/)
    expect(run.text()).toMatch(/culex-1 +live/)
    expect(run.text()).toMatch(/culex-2 +live/)
    // with --redis, as JSON
    const json = cluster.cli(['cluster', 'status', '--redis', state.redis_url, '--json'])
    expect((await json.exited).code).toBe(0)
    const parsed = JSON.parse(json.text()) as { nodes: Array<{ id: string; live: boolean; clients: number }> }
    expect(parsed.nodes.map((n) => [n.id, n.live]).sort()).toEqual([['culex-1', true], ['culex-2', true]])
    expect(parsed.nodes.reduce((s, n) => s + n.clients, 0)).toBe(1)
    await c.endAsync()
  })

  it('plain MQTT round trip through HAProxy on the MQTT port', async () => {
    await roundTrip(`mqtt://127.0.0.1:${cluster.ports.mqtt}`)
  })

  it('MQTT over TLS round trip with the generated CA; a client that does not trust it fails the handshake', async () => {
    await roundTrip(`mqtts://127.0.0.1:${cluster.ports.tls}`, { ca })
    await roundTrip(`mqtts://localhost:${cluster.ports.tls}`, { ca })
    await expect(mqttConnect(`mqtts://127.0.0.1:${cluster.ports.tls}`, { connectTimeout: 3000 })).rejects.toThrow(/certificate|self.signed|issuer/i)
  })

  it('MQTT over secure WebSocket round trip with mqtt.js at /mqtt', async () => {
    await roundTrip(`wss://127.0.0.1:${cluster.ports.wss}/mqtt`, { ca })
  })

  it('a node sees and logs the client\'s real address through PROXY protocol v2 (TCP, TLS and WSS)', async () => {
    // MQTT from 127.0.0.3 (loopback), through HAProxy
    let socket: Socket | undefined
    const tcp = new MqttClient(() => (socket = createConnection({ host: '127.0.0.1', port: cluster.ports.mqtt, localAddress: '127.0.0.3' })), {
      clientId: 'real-addr-tcp',
      reconnectPeriod: 0,
      protocolVersion: 4,
    })
    await new Promise<void>((resolve, reject) => {
      tcp.once('connect', () => resolve())
      tcp.once('error', reject)
    })
    const tcpPort = socket!.localPort
    const wss = await mqttConnect(`wss://127.0.0.1:${cluster.ports.wss}/mqtt`, { ca, clientId: 'real-addr-wss', wsOptions: { localAddress: '127.0.0.4' } })
    const tls = await mqttConnect(`mqtts://127.0.0.1:${cluster.ports.tls}`, { ca, clientId: 'real-addr-tls' })
    const seen = (id: string): string | undefined => nodeLogs().find((l) => l.msg === 'client connected' && l.client === id)?.address as string | undefined
    await waitFor(() => !!seen('real-addr-tcp') && !!seen('real-addr-wss') && !!seen('real-addr-tls'), 5000, 'connect log lines')
    expect(seen('real-addr-tcp')).toBe(`127.0.0.3:${tcpPort}`)
    expect(seen('real-addr-wss')).toMatch(/^127\.0\.0\.4:\d+$/)
    expect(seen('real-addr-tls')).toMatch(/^127\.0\.0\.1:\d+$/)
    // HAProxy itself connects from 127.0.0.1: the logged port is the client's, not HAProxy's
    const haproxySide = cluster.state().nodes.map((n) => n.mqtt)
    expect(haproxySide).not.toContain(Number(seen('real-addr-tls')!.split(':')[1]))
    await Promise.all([tcp.endAsync(true), wss.endAsync(), tls.endAsync()])
  })

  it('a real browser (headless Chromium) connects with MQTT.js over wss://127.0.0.1:<wss>/mqtt and shows a message published by a test client', async () => {
    const pageDir = join(REPO_ROOT, 'examples', 'browser')
    const bundle = join(REPO_ROOT, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js')
    const files: Record<string, [string, string]> = {
      '/': [join(pageDir, 'index.html'), 'text/html'],
      '/index.html': [join(pageDir, 'index.html'), 'text/html'],
      '/app.js': [join(pageDir, 'app.js'), 'text/javascript'],
      '/vendor/mqtt.min.js': [bundle, 'text/javascript'], // served from node_modules, never committed
    }
    const http: Server = createServer((req, res) => {
      const f = files[(req.url ?? '/').split('?')[0]!]
      if (!f) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': f[1] })
      res.end(readFileSync(f[0]))
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    const httpPort = (http.address() as { port: number }).port
    // trust exactly the cluster's server key, nothing else
    const cert = new X509Certificate(readFileSync(cluster.state().certs.pem))
    const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64')
    const profile = tempDir('culex-chromium-')
    mkdirSync(profile, { recursive: true })
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`,
      ],
    })
    try {
      const page = await browser.newPage()
      const url = `wss://127.0.0.1:${cluster.ports.wss}/mqtt`
      await page.goto(`http://127.0.0.1:${httpPort}/?url=${encodeURIComponent(url)}&topic=${encodeURIComponent('browser/#')}`)
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected', undefined, { timeout: 15_000 })
      const pub = await mqttConnect(`mqtt://127.0.0.1:${cluster.ports.mqtt}`)
      await pub.publishAsync('browser/hello', 'hello from a test client', { qos: 1 })
      await page.waitForFunction(() => document.getElementById('messages')?.textContent?.includes('browser/hello: hello from a test client'), undefined, {
        timeout: 10_000,
      })
      await pub.endAsync()
    } finally {
      await browser.close()
      await new Promise((r) => http.close(r))
    }
  })

  it('HAProxy takes a live node whose /readyz answers 503 out of rotation (L7STS) and back once it is ready', async () => {
    const admin = new Redis(cluster.state().redis_url)
    try {
      // culex-2 loses its Redis subscriber link and cannot get it back for now: /readyz 503
      const list = (await admin.client('LIST')) as string
      const sub = /id=(\d+) [^\n]*name=culex-culex-2-sub/.exec(list)!
      await admin.config('SET', 'maxclients', String(list.trim().split('\n').length - 1))
      await admin.client('KILL', 'ID', sub[1]!)
      const http = cluster.state().nodes.find((n) => n.id === 'culex-2')!.http
      await waitFor(async () => (await fetch(`http://127.0.0.1:${http}/readyz`)).status === 503, 5000, 'culex-2 not ready')
      await waitFor(async () => (await haproxyServers('culex_mqtt'))['culex-2']?.status === 'DOWN', 10_000, 'culex-2 DOWN')
      expect((await haproxyServers('culex_mqtt'))['culex-2']?.check).toBe('L7STS') // the HTTP status, not a dead port
      // new clients all land on culex-1 meanwhile
      const c = await mqttConnect(`mqtt://127.0.0.1:${cluster.ports.mqtt}`, { clientId: 'while-down' })
      await waitFor(() => nodeLogs().some((l) => l.msg === 'client connected' && l.client === 'while-down'), 5000, 'connect logged')
      expect(nodeLogs().find((l) => l.msg === 'client connected' && l.client === 'while-down')?.node_id).toBe('culex-1')
      await c.endAsync()
      await admin.config('SET', 'maxclients', '10000')
      await waitFor(async () => (await haproxyServers('culex_mqtt'))['culex-2']?.status === 'UP', 15_000, 'culex-2 UP again')
    } finally {
      await admin.config('SET', 'maxclients', '10000').catch(() => {})
      admin.disconnect()
    }
  })

  it('killing one node makes its clients reconnect through HAProxy to the other, and HAProxy marks it down by its /readyz check', async () => {
    const url = `mqtt://127.0.0.1:${cluster.ports.mqtt}`
    const clients = await Promise.all([1, 2, 3, 4].map((i) => mqttConnect(url, { clientId: `failover-${i}`, reconnectPeriod: 300 })))
    const gots = clients.map((c) => collect(c))
    await Promise.all(clients.map((c) => c.subscribeAsync('failover/#', { qos: 1 })))
    const connects = clients.map(() => 0)
    clients.forEach((c, i) => c.on('connect', () => connects[i]!++))

    // leastconn spread them: kill a node that has some
    const before = await haproxyServers('culex_mqtt')
    expect(Object.values(before).map((s) => [s.status, s.check])).toEqual([['UP', 'L7OK'], ['UP', 'L7OK']]) // HTTP check on /readyz
    const status = cluster.cli(['cluster', 'status', '--dir', cluster.dir, '--json'])
    await status.exited
    const counts = (JSON.parse(status.text()) as { nodes: Array<{ id: string; clients: number }> }).nodes
    const victim = counts.find((n) => n.clients > 0)!
    const moved = victim.clients
    const pid = cluster.state().nodes.find((n) => n.id === victim.id)!.pid
    process.kill(pid, 'SIGKILL')

    await waitFor(() => connects.filter((n) => n > 0).length === moved, 15_000, `${moved} clients reconnected`)
    await waitFor(() => clients.every((c) => c.connected), 5000, 'all clients connected')
    for (const backend of ['culex_mqtt', 'culex_ws']) {
      await waitFor(async () => (await haproxyServers(backend))[victim.id]?.status === 'DOWN', 10_000, `HAProxy marks the node DOWN in ${backend}`)
    }
    await sleep(300) // resubscriptions
    const pub = await mqttConnect(url)
    await pub.publishAsync('failover/after', 'still here', { qos: 1 })
    await waitFor(() => gots.every((g) => g.some((m) => m.topic === 'failover/after')), 5000, 'every client gets the message')
    await Promise.all([...clients, pub].map((c) => c.endAsync(true)))
  })

  it('`culex cluster down` stops HAProxy, the nodes and Redis and removes cluster.json', async () => {
    const state = cluster.state()
    const down = cluster.cli(['cluster', 'down', '--dir', cluster.dir])
    expect((await down.exited).code).toBe(0)
    expect((await cluster.proc.exited).code).toBe(0)
    expect(cluster.proc.text()).toContain('culex cluster stopped')
    const aliveNow = (pid: number): boolean => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    for (const pid of [state.haproxy.pid, state.redis.pid, ...state.nodes.map((n) => n.pid)]) expect(aliveNow(pid)).toBe(false)
    expect(existsSync(join(cluster.dir, 'cluster.json'))).toBe(false)
  }, 60_000)
})
