/**
 * The admin API and the dashboard through the real HAProxy of `culex cluster up --nodes 3`, over
 * HTTPS on its API port (9443 by default) with the cluster's CA: list clients, kick one, publish;
 * /metrics and the rest of the ops port stay private. The dashboard in headless Chromium: log in,
 * three nodes, publish from the form, see it in the live view (MQTT over WSS), kick a client; it
 * saves a screenshot (docs/img/dashboard.png with CULEX_SCREENSHOT=1: `npm run screenshot`; a temp file otherwise, so a test run leaves the checkout as it was).
 */
import { tmpdir } from 'node:os'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT, killAll, logLines, tempDir, waitFor } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { clusterUp, type UpCluster } from '../helpers/cluster-up.js'

let cluster: UpCluster
let ca: Buffer
let token: string

beforeAll(async () => {
  cluster = await clusterUp(3)
  ca = readFileSync(cluster.state().certs.ca)
  token = readFileSync(cluster.state().admin_token_file!, 'utf8').trim()
}, 120_000)

afterAll(async () => {
  await closeAllClients()
  await cluster?.down()
  await killAll()
}, 60_000)

/** HTTPS to HAProxy's API port, trusting the cluster's CA only */
function https(method: string, path: string, body?: unknown, auth = `Bearer ${token}`, localAddress?: string): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      { host: '127.0.0.1', port: cluster.ports.api, path, method, ca, servername: 'localhost', localAddress, headers: { authorization: auth, ...(data ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString()))
        res.on('end', () => {
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, json, text })
        })
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

describe('admin API through HAProxy over HTTPS', () => {
  it('`cluster up` prints the API and dashboard address and keeps the admin token in a 0600 file', () => {
    expect(cluster.proc.text()).toContain(`https://127.0.0.1:${cluster.ports.api}/api/v1`)
    expect(token).toMatch(/^[0-9a-f]{48}$/)
  })

  it('lists the three nodes and clients of every node, kicks one, publishes to subscribers on any node', async () => {
    const nodes = await https('GET', '/api/v1/nodes')
    expect(nodes.status).toBe(200)
    expect(nodes.json.nodes.map((n: { id: string; state: string }) => `${n.id}:${n.state}`)).toEqual(['culex-1:live', 'culex-2:live', 'culex-3:live'])

    const url = `mqtt://127.0.0.1:${cluster.ports.mqtt}`
    const clients = await Promise.all([1, 2, 3, 4].map((i) => mqttConnect(url, { clientId: `via-haproxy-${i}` })))
    await Promise.all(clients.map((c) => c.subscribeAsync('over/9443', { qos: 1 })))
    const list = await https('GET', '/api/v1/clients?client_id=via-haproxy-')
    expect(list.json.total).toBe(4)
    // leastconn spread them over the nodes; the API shows each on its own node
    expect(new Set(list.json.items.map((c: { node: string }) => c.node)).size).toBeGreaterThan(1)

    const closed = new Promise<void>((r) => clients[2]!.once('close', () => r()))
    expect((await https('DELETE', '/api/v1/clients/via-haproxy-3')).json).toEqual({ disconnected: 'via-haproxy-3' })
    await closed

    const res = await https('POST', '/api/v1/publish', { topic: 'over/9443', payload: 'through HAProxy', qos: 1 })
    expect(res.json).toMatchObject({ acknowledged: true })
    const got = [0, 1, 3].map((i) => collect(clients[i]!))
    await waitFor(() => got.every((g) => g.length === 1), 5000, 'the three remaining clients get it')
    expect(got.flat().map((g) => g.payload)).toEqual(['through HAProxy', 'through HAProxy', 'through HAProxy'])
  })

  it('answers 401 without the token, and does not expose /metrics, /readyz or /admin/', async () => {
    expect((await https('GET', '/api/v1/clients', undefined, '')).status).toBe(401)
    for (const path of ['/metrics', '/readyz', '/admin/security']) expect((await https('GET', path)).status, path).toBe(404)
  })

  it('a failed Basic login for HTTP publish is counted against the client\'s own address (X-Forwarded-For from HAProxy, a trusted proxy), not HAProxy\'s', async () => {
    const wrong = `Basic ${Buffer.from('nobody:wrong-password-1').toString('base64')}`
    expect((await https('POST', '/api/v1/publish', { topic: 'x/y', payload: 'no' }, wrong, '127.0.0.7')).status).toBe(401)
    const lines = () => cluster.state().nodes.flatMap((n) => logLines(readFileSync(n.log, 'utf8')))
    await waitFor(() => lines().some((l) => l.msg === 'HTTP publish: authentication failed'), 5000, 'the log line')
    expect(lines().find((l) => l.msg === 'HTTP publish: authentication failed')).toMatchObject({ username: 'nobody', address: '127.0.0.7' })
  })
})

describe('dashboard in headless Chromium, through HAProxy', () => {
  it('logs in, shows three live nodes, publishes from the form into the live view over WSS, kicks a client', async () => {
    // some traffic for the charts and tables
    const url = `mqtt://127.0.0.1:${cluster.ports.mqtt}`
    const sensor = await mqttConnect(url, { clientId: 'sensor-17' })
    const victim = await mqttConnect(url, { clientId: 'dash-victim' })
    await victim.subscribeAsync('plant/#', { qos: 1 })
    const keeper = await mqttConnect(url, { clientId: 'line-3-recorder', clean: false })
    await keeper.subscribeAsync('plant/line-3/#', { qos: 1 })
    await keeper.endAsync()
    await sensor.publishAsync('plant/line-3/status', 'running', { qos: 1, retain: true })
    await sensor.publishAsync('plant/line-1/status', 'maintenance', { qos: 1, retain: true })
    let sent = 0
    const traffic = setInterval(() => {
      if (sent++ < 400) sensor.publish(`plant/line-${sent % 4}/temp`, String(20 + (sent % 7)), { qos: 1 })
    }, 20)

    const cert = new X509Certificate(readFileSync(cluster.state().certs.pem))
    const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64')
    const profile = tempDir('culex-chromium-')
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1440, height: 1100 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
    })
    try {
      const page = await browser.newPage()
      const wss = `wss://127.0.0.1:${cluster.ports.wss}/mqtt`
      await page.goto(`https://127.0.0.1:${cluster.ports.api}/dashboard/?mqtt=${encodeURIComponent(wss)}`)
      // a wrong token is refused, the right one is asked once and kept for the session
      await page.fill('#token', 'not-the-token-0123456789')
      await page.click('#login')
      await page.waitForSelector('#login-error')
      await page.fill('#token', token)
      await page.click('#login')
      await page.waitForFunction(() => document.querySelectorAll('#nodes .node-row .state-live').length === 3, undefined, { timeout: 15_000 })
      expect(await page.$$eval('#nodes .node-row td:first-child', (tds) => tds.map((td) => td.textContent))).toEqual(['culex-1', 'culex-2', 'culex-3'])
      await page.reload()
      await page.waitForSelector('#nodes .node-row') // still signed in (sessionStorage)

      // live view over WSS through HAProxy, then a publish from the form
      await page.fill('#live-filter', 'dash/#')
      await page.click('#live-go')
      await page.waitForFunction(() => document.getElementById('live-status')?.textContent === 'subscribed to dash/#', undefined, { timeout: 15_000 })
      await page.fill('#pub-topic', 'dash/hello')
      await page.fill('#pub-payload', 'hello from the dashboard form')
      await page.click('#pub-send')
      await page.waitForFunction(() => document.getElementById('live-messages')?.textContent?.includes('dash/hello: hello from the dashboard form'), undefined, { timeout: 10_000 })
      // the message may reach the live view before the API's answer reaches the form
      await page.waitForFunction(() => document.getElementById('pub-result')?.textContent?.includes('(acknowledged)'), undefined, { timeout: 10_000 })

      // kick: the client's connection closes
      const closed = new Promise<void>((r) => victim.once('close', () => r()))
      await page.waitForSelector('#clients tr[data-client="dash-victim"] button.kick', { timeout: 10_000 })
      await page.click('#clients tr[data-client="dash-victim"] button.kick')
      await closed
      await page.waitForFunction(() => !document.querySelector('#clients tr[data-client="dash-victim"]'), undefined, { timeout: 10_000 })

      await waitFor(() => sent >= 400, 20_000, 'traffic sent')
      await page.waitForFunction(() => document.querySelectorAll('#retained tbody tr').length >= 2, undefined, { timeout: 10_000 })
      mkdirSync(join(REPO_ROOT, 'docs', 'img'), { recursive: true })
      await page.screenshot({ path: process.env.CULEX_SCREENSHOT ? join(REPO_ROOT, 'docs', 'img', 'dashboard.png') : join(tmpdir(), `culex-dashboard-${process.pid}.png`), fullPage: true })
    } finally {
      clearInterval(traffic)
      await browser.close()
    }
  }, 90_000)
})
