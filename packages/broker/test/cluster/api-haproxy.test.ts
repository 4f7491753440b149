/**
 * The admin API through the real HAProxy of `culex cluster up --nodes 3`, over HTTPS on its API
 * port (9443 by default) with the cluster's CA: list clients, kick one, publish; /metrics and
 * the rest of the ops port stay private.
 */
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, waitFor } from '../helpers/cluster-procs.js'
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
function https(method: string, path: string, body?: unknown, auth = `Bearer ${token}`): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      { host: '127.0.0.1', port: cluster.ports.api, path, method, ca, servername: 'localhost', headers: { authorization: auth, ...(data ? { 'content-type': 'application/json' } : {}) } },
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
})
