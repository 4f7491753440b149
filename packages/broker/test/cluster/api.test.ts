/**
 * The admin REST API of a 3-node cluster over one real redis-server: every answer is asked of
 * one node and covers all three (clients, kick, sessions, retained, publish, users, ACL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

const TOKEN = 'cluster-admin-token-0123456789'
let redis: TestRedis
let a: TestNode
let b: TestNode
let c: TestNode

beforeAll(async () => {
  redis = await startRedis()
  const extra = ['--admin-token', TOKEN]
  // two at a time: three node processes starting at once on a busy 2-core machine can take > 15 s
  ;[a, b] = await Promise.all([startNode(redis.url, 'api-a', extra), startNode(redis.url, 'api-b', extra)])
  c = await startNode(redis.url, 'api-c', extra)
}, 60_000)

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

/** the API of a node, as an operator calls it */
async function api(node: TestNode, method: string, path: string, body?: unknown, auth = `Bearer ${TOKEN}`): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${node.http}/api/v1${path}`, {
    method,
    headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  return { status: res.status, json: await res.json() }
}

describe('admin REST API, cluster-wide', () => {
  it('answers 401 with a JSON error without the admin token, and serves its OpenAPI document', async () => {
    const none = await fetch(`http://127.0.0.1:${a.http}/api/v1/clients`)
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    expect(await none.json()).toEqual({ error: expect.stringContaining('admin token required') })
    expect((await api(a, 'GET', '/clients', undefined, 'Bearer wrong-token-0123456789')).status).toBe(401)
    const doc = (await (await fetch(`http://127.0.0.1:${a.http}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> }
    expect(doc.openapi).toMatch(/^3\./)
    for (const p of ['/api/v1/nodes', '/api/v1/clients', '/api/v1/clients/{id}', '/api/v1/sessions', '/api/v1/retained', '/api/v1/publish', '/api/v1/users', '/api/v1/acl']) {
      expect(doc.paths[p], p).toBeDefined()
    }
    expect(Object.keys(doc.paths['/api/v1/clients/{id}']!).sort()).toEqual(['delete', 'get'])
  })

  it('lists the three nodes from any node, live, with their versions', async () => {
    const { status, json } = await api(b, 'GET', '/nodes')
    expect(status).toBe(200)
    expect(json.nodes.map((n: { id: string; state: string }) => [n.id, n.state])).toEqual([['api-a', 'live'], ['api-b', 'live'], ['api-c', 'live']])
    expect(json.nodes.every((n: { version?: string }) => typeof n.version === 'string')).toBe(true)
  })

  it('lists clients of every node, filters them and pages them; DELETE kicks a client on another node', async () => {
    const onB = await mqttConnect(b.url, { clientId: 'list-b-1' })
    await onB.subscribeAsync('sensors/+/temp', { qos: 1 })
    await mqttConnect(c.url, { clientId: 'list-c-1' })
    await mqttConnect(c.url, { clientId: 'list-c-2' })
    const all = await api(a, 'GET', '/clients?client_id=list-')
    expect(all.status).toBe(200)
    expect(all.json.total).toBe(3)
    expect(all.json.items.map((i: { id: string; node: string }) => [i.id, i.node])).toEqual([['list-b-1', 'api-b'], ['list-c-1', 'api-c'], ['list-c-2', 'api-c']])
    expect(all.json.items[0]).toMatchObject({ protocol: 4, clean: true, subscriptions: 1, address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    expect((await api(a, 'GET', '/clients?client_id=list-&node=api-c')).json.total).toBe(2)
    expect((await api(a, 'GET', '/clients?client_id=list-&topic=sensors/')).json.items.map((i: { id: string }) => i.id)).toEqual(['list-b-1'])
    const page2 = await api(a, 'GET', '/clients?client_id=list-&offset=1&limit=1')
    expect(page2.json).toMatchObject({ total: 3, offset: 1, limit: 1, items: [{ id: 'list-c-1' }] })
    expect((await api(a, 'GET', '/clients?limit=0')).status).toBe(400)
    expect((await api(a, 'GET', '/clients/list-c-2')).json).toMatchObject({ id: 'list-c-2', node: 'api-c', keepalive_s: 60 })
    expect((await api(a, 'GET', '/clients/list-c-9')).status).toBe(404)

    const victim = await mqttConnect(c.url, { clientId: 'kick-me' })
    const closed = new Promise<void>((r) => victim.once('close', () => r()))
    const kick = await api(a, 'DELETE', '/clients/kick-me')
    expect(kick).toEqual({ status: 200, json: { disconnected: 'kick-me' } })
    await closed
    await waitFor(async () => (await api(b, 'GET', '/clients?client_id=kick-me')).json.total === 0, 5000, 'gone from the list')
    expect((await api(a, 'DELETE', '/clients/nobody-here')).status).toBe(404)
  })

  it('lists a persistent session offline with its queued count and subscriptions; DELETE ends it (no Session Present after) [MQTT-3.2.2-2]', async () => {
    const s = await mqttConnect(b.url, { clientId: 'sess-1', clean: false })
    await s.subscribeAsync('sess/#', { qos: 1 })
    await s.endAsync()
    const pub = await mqttConnect(c.url)
    for (let i = 0; i < 3; i++) await pub.publishAsync('sess/x', `m${i}`, { qos: 1 })
    const list = await api(a, 'GET', '/sessions?client_id=sess-')
    expect(list.json.items).toEqual([{ client_id: 'sess-1', online: false, node: null, subscriptions: 1, queued: 3 }])
    expect((await api(a, 'GET', '/clients/sess-1/subscriptions')).json).toEqual({ client_id: 'sess-1', subscriptions: [{ topic: 'sess/#', qos: 1 }] })

    expect(await api(c, 'DELETE', '/sessions/sess-1')).toEqual({ status: 200, json: { deleted: 'sess-1' } })
    expect((await api(a, 'GET', '/sessions?client_id=sess-')).json.total).toBe(0)
    // the client returns: no session, and none of the queued messages (they went with it)
    const back = mqtt.connect(a.url, { clientId: 'sess-1', clean: false, reconnectPeriod: 0 })
    const got: string[] = []
    back.on('message', (_t, payload) => got.push(payload.toString()))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      back.once('connect', resolve)
      back.once('error', reject)
    })
    expect(connack.sessionPresent).toBe(false)
    await back.subscribeAsync('sess/#', { qos: 1 })
    await pub.publishAsync('sess/x', 'marker', { qos: 1 })
    await waitFor(() => got.includes('marker'), 5000, 'the marker')
    expect(got).toEqual(['marker'])
    await back.endAsync()
    expect((await api(a, 'DELETE', '/sessions/never-was')).status).toBe(404)
  })

  it('browses retained messages by filter, gets and deletes one, deletes by filter; deleted ones are not sent to new subscribers', async () => {
    const pub = await mqttConnect(b.url)
    await pub.publishAsync('ret/a/1', 'one', { qos: 1, retain: true })
    await pub.publishAsync('ret/a/2', Buffer.from([0xff, 0x00, 0x01]), { qos: 1, retain: true })
    await pub.publishAsync('ret/b/1', 'three', { qos: 0, retain: true })
    // QoS 0: publishAsync resolves once written, not once stored
    let list = await api(c, 'GET', '/retained?filter=ret/%23')
    await waitFor(async () => (list = await api(c, 'GET', '/retained?filter=ret/%23')).json.total === 3, 5000, 'three retained messages')
    expect(list.json.items[1]).toEqual({ topic: 'ret/a/2', qos: 1, size: 3, encoding: 'base64', payload: '/wAB', truncated: false })
    // a page: the total of the filter's matches, the page's messages by topic (a cluster reads only the page's)
    const page = (await api(c, 'GET', '/retained?filter=ret/%23&offset=1&limit=2')).json
    expect({ total: page.total, topics: page.items.map((i: { topic: string }) => i.topic) }).toEqual({ total: 3, topics: ['ret/a/2', 'ret/b/1'] })
    expect((await api(c, 'GET', '/retained?filter=ret/%2B/1')).json.items.map((i: { topic: string; payload: string }) => [i.topic, i.payload])).toEqual([['ret/a/1', 'one'], ['ret/b/1', 'three']])
    expect((await api(c, 'GET', '/retained/ret/a/1')).json).toMatchObject({ topic: 'ret/a/1', payload: 'one', encoding: 'utf8' })
    expect(await api(a, 'DELETE', '/retained/ret/a/1')).toEqual({ status: 200, json: { deleted: 'ret/a/1' } })
    expect((await api(a, 'GET', '/retained/ret/a/1')).status).toBe(404)
    expect((await api(a, 'DELETE', '/retained?filter=ret/a/%2B')).json).toEqual({ deleted: 1 })
    const sub = await mqttConnect(c.url)
    const got = collect(sub)
    await sub.subscribeAsync('ret/#', { qos: 1 })
    await waitFor(() => got.length >= 1, 5000, 'the remaining retained message')
    expect(got.map((g) => g.topic)).toEqual(['ret/b/1'])
  })

  it('POST /publish at one node reaches subscribers on the others exactly once, QoS 1 acknowledged; utf8, base64, retain', async () => {
    const sub = await mqttConnect(c.url, { clientId: 'http-sub' })
    const got = collect(sub)
    await sub.subscribeAsync('http/#', { qos: 1 })
    const res = await api(a, 'POST', '/publish', { topic: 'http/one', payload: 'hello', qos: 1 })
    expect(res).toEqual({ status: 200, json: { topic: 'http/one', qos: 1, retain: false, bytes: 5, acknowledged: true } })
    expect((await api(a, 'POST', '/publish', { topic: 'http/two', payload: Buffer.from('bin\u0001').toString('base64'), encoding: 'base64', qos: 0, retain: true })).status).toBe(200)
    expect((await api(b, 'POST', '/publish', { topic: 'http/end', payload: 'marker', qos: 1 })).status).toBe(200)
    await waitFor(() => got.some((g) => g.topic === 'http/end'), 5000, 'the marker')
    expect(got.slice(0, -1)).toEqual([
      { topic: 'http/one', payload: 'hello', qos: 1, retain: false },
      { topic: 'http/two', payload: 'bin\u0001', qos: 0, retain: false },
    ])
    expect((await api(b, 'GET', '/retained/http/two')).json.payload).toBe('bin\u0001')
    for (const topic of ['http/+', 'a/#', '', '$SYS/x']) expect((await api(a, 'POST', '/publish', { topic, payload: 'x' })).status, topic).toBe(400)
  })

  it('adds a user that can then connect to any node; Basic-auth HTTP publish applies that user\'s ACL; 401 on a wrong password', async () => {
    const add = await api(a, 'POST', '/users', { username: 'apiuser', password: 'secret-password-1', roles: ['device'] })
    expect(add).toEqual({ status: 201, json: { username: 'apiuser', roles: ['device'] } })
    expect((await api(b, 'GET', '/users')).json.users).toContainEqual({ username: 'apiuser', roles: ['device'] })
    await waitFor(async () => {
      try {
        await (await mqttConnect(c.url, { username: 'apiuser', password: 'secret-password-1' })).endAsync()
        return true
      } catch {
        return false
      }
    }, 5000, 'the new user logs in on another node')

    const acl = 'users:\n  apiuser:\n    - allow: publish\n      topic: "apiuser/#"\nall:\n  - allow: subscribe\n    topic: "#"\n'
    expect((await api(a, 'PUT', '/acl', { acl })).status).toBe(200)
    expect((await api(a, 'PUT', '/acl', { acl: 'users: [oops' })).status).toBe(400)
    const sub = await mqttConnect(b.url)
    const got = collect(sub)
    await sub.subscribeAsync('apiuser/#', { qos: 1 })
    const basic = `Basic ${Buffer.from('apiuser:secret-password-1').toString('base64')}`
    expect((await api(a, 'POST', '/publish', { topic: 'apiuser/t', payload: 'as a user', qos: 1 }, basic)).status).toBe(200)
    const denied = await api(a, 'POST', '/publish', { topic: 'other/t', payload: 'no' }, basic)
    expect(denied.status).toBe(403)
    expect(denied.json.error).toMatch(/may not publish/)
    expect((await api(a, 'POST', '/publish', { topic: 'apiuser/t', payload: 'no' }, `Basic ${Buffer.from('apiuser:wrong-password').toString('base64')}`)).status).toBe(401)
    expect((await api(a, 'GET', '/clients', undefined, basic)).status).toBe(401) // a user is no admin
    await waitFor(() => got.length === 1, 5000, 'the allowed message')
    expect(got[0]).toMatchObject({ topic: 'apiuser/t', payload: 'as a user' })
    // a new password and roles apply on every node; the old password stops working
    expect((await api(b, 'PUT', '/users/apiuser/password', { password: 'second-password-2' })).status).toBe(200)
    expect((await api(b, 'PUT', '/users/apiuser/roles', { roles: ['device', 'readonly'] })).json).toEqual({ username: 'apiuser', roles: ['device', 'readonly'] })
    const second = `Basic ${Buffer.from('apiuser:second-password-2').toString('base64')}`
    await waitFor(async () => (await api(c, 'POST', '/publish', { topic: 'apiuser/t2', payload: 'x' }, second)).status === 200, 5000, 'new password on another node')
    expect((await api(c, 'POST', '/publish', { topic: 'apiuser/t2', payload: 'x' }, basic)).status).toBe(401)
    expect((await api(c, 'DELETE', '/acl')).json).toEqual({ acl: null })
    expect((await api(c, 'DELETE', '/users/apiuser')).json).toEqual({ removed: 'apiuser' })
  })
})
