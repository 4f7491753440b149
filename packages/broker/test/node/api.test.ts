/**
 * The admin REST API of a single node (memory mode): its own clients, sessions kept in memory,
 * users in its users_file, HTTP publish with an MQTT user's credentials.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { connect, startTestNode, stopAll, tempDir, waitFor, writeUsers } from '../helpers/security-node.js'
import type { CulexNode } from '../../src/main.js'

afterAll(stopAll)

const TOKEN = 'single-node-admin-token-0123'

function client(node: CulexNode) {
  return async (method: string, path: string, body?: unknown, auth = `Bearer ${TOKEN}`): Promise<{ status: number; json: any }> => {
    const res = await fetch(`http://127.0.0.1:${node.ports.http}/api/v1${path}`, {
      method,
      headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    })
    return { status: res.status, json: await res.json() }
  }
}

describe('admin REST API on a single node', () => {
  it('is off (403) without an admin_token, but HTTP publish with a user still works', async () => {
    const dir = tempDir()
    const usersFile = join(dir, 'users.txt')
    await writeUsers(usersFile, [{ name: 'svc', password: 'svc-password-1' }])
    const node = await startTestNode({ users_file: usersFile })
    const api = client(node)
    expect((await api('GET', '/nodes')).status).toBe(403)
    const sub = await connect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { username: 'svc', password: 'svc-password-1' })
    const got: string[] = []
    sub.on('message', (t, p) => got.push(`${t}:${p.toString()}`))
    await sub.subscribeAsync('svc/#', { qos: 1 })
    const basic = `Basic ${Buffer.from('svc:svc-password-1').toString('base64')}`
    expect((await api('POST', '/publish', { topic: 'svc/a', payload: 'over http', qos: 1 }, basic)).json).toMatchObject({ acknowledged: true })
    await waitFor(() => got.length === 1, 5000, 'delivery')
    expect(got).toEqual(['svc/a:over http'])
  })

  it('kicks a client, lists and ends an offline persistent session with its queue, manages users in the users file', async () => {
    const dir = tempDir()
    const usersFile = join(dir, 'users.txt')
    await writeUsers(usersFile, [{ name: 'alice', password: 'alice-password-1' }])
    const node = await startTestNode({ admin_token: TOKEN, users_file: usersFile })
    const api = client(node)
    const url = `mqtt://127.0.0.1:${node.ports.mqtt}`
    const auth = { username: 'alice', password: 'alice-password-1' }

    const nodes = await api('GET', '/nodes')
    expect(nodes.json.nodes).toHaveLength(1)
    expect(nodes.json.nodes[0]).toMatchObject({ id: node.nodeId, state: 'live', clients: 0 })

    const victim = await connect(url, { ...auth, clientId: 'one-kick' })
    expect((await api('GET', '/clients')).json.items).toMatchObject([{ id: 'one-kick', username: 'alice', node: node.nodeId }])
    const closed = new Promise<void>((r) => victim.once('close', () => r()))
    expect((await api('DELETE', '/clients/one-kick')).status).toBe(200)
    await closed

    const s = await connect(url, { ...auth, clientId: 'mem-sess', clean: false })
    await s.subscribeAsync('q/#', { qos: 1 })
    await s.endAsync()
    const pub = await connect(url, auth)
    for (let i = 0; i < 4; i++) await pub.publishAsync('q/x', `m${i}`, { qos: 1 })
    expect((await api('GET', '/sessions')).json.items).toEqual([{ client_id: 'mem-sess', online: false, node: null, subscriptions: 1, queued: 4 }])
    expect((await api('DELETE', '/sessions/mem-sess')).status).toBe(200)
    expect((await api('GET', '/sessions')).json.total).toBe(0)
    // back with clean: false: none of the 4 queued messages comes
    const back = mqtt.connect(url, { ...auth, clientId: 'mem-sess', clean: false, reconnectPeriod: 0 })
    const got: string[] = []
    back.on('message', (_t, p) => got.push(p.toString()))
    const connack = await new Promise<{ sessionPresent: boolean }>((r, j) => back.once('connect', r).once('error', j))
    // [MQTT-3.2.2-1] the session is gone: Session Present 0
    expect(connack.sessionPresent).toBe(false)
    await back.subscribeAsync('q/#', { qos: 1 })
    await pub.publishAsync('q/x', 'marker', { qos: 1 })
    await waitFor(() => got.includes('marker'), 5000, 'marker')
    expect(got).toEqual(['marker'])
    await back.endAsync()

    expect((await api('POST', '/users', { username: 'bob', password: 'bob-password-1', roles: ['x'] })).status).toBe(201)
    expect((await api('POST', '/users', { username: 'bob', password: 'bob-password-1' })).status).toBe(409)
    expect((await api('POST', '/users', { username: 'b/b', password: 'bob-password-1' })).status).toBe(400)
    expect((await api('POST', '/users', { username: 'carl', password: 'short' })).status).toBe(400)
    expect((await api('GET', '/users')).json.users).toEqual([{ username: 'alice', roles: [] }, { username: 'bob', roles: ['x'] }])
    await (await connect(url, { username: 'bob', password: 'bob-password-1' })).endAsync()
    expect((await api('PUT', '/acl', { acl: 'all: []' })).status).toBe(409) // a single node's ACL is its acl_file
  })
})
