/** The ops HTTP server's admin endpoints need the admin token; health and metrics do not. */
import { afterAll, describe, expect, it } from 'vitest'
import { connect, startTestNode, stopAll, waitFor } from '../helpers/security-node.js'

afterAll(stopAll)

const TOKEN = 'a-long-admin-token-0123456789'

describe('admin endpoints', () => {
  it('answer 401 without the bearer admin_token, work with it, and leave /metrics and /healthz open', async () => {
    const node = await startTestNode({ admin_token: TOKEN })
    const base = `http://127.0.0.1:${node.ports.http}`
    expect((await fetch(`${base}/admin/security`)).status).toBe(401)
    expect((await fetch(`${base}/admin/security`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401)
    const auth = { authorization: `Bearer ${TOKEN}` }
    const status = await fetch(`${base}/admin/security`, { headers: auth })
    expect(status.status).toBe(200)
    expect(await status.json()).toMatchObject({ allow_anonymous: true, allow_anonymous_reason: 'auto: no users yet', acl: false })
    expect((await fetch(`${base}/admin/reload`, { method: 'POST', headers: auth })).status).toBe(200)

    const c = await connect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { clientId: 'kick-me' })
    let closed = false
    c.on('close', () => (closed = true))
    expect((await fetch(`${base}/admin/disconnect?client=kick-me`, { method: 'POST' })).status).toBe(401)
    expect(closed).toBe(false)
    expect((await fetch(`${base}/admin/disconnect?client=kick-me`, { method: 'POST', headers: auth })).status).toBe(200)
    await waitFor(() => closed, 2000, 'client kicked')
    expect((await fetch(`${base}/admin/disconnect?client=nobody`, { method: 'POST', headers: auth })).status).toBe(404)

    expect((await fetch(`${base}/metrics`)).status).toBe(200)
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
  })

  it('are off (403) when no admin_token is set', async () => {
    const node = await startTestNode()
    expect((await fetch(`http://127.0.0.1:${node.ports.http}/admin/security`, { headers: { authorization: 'Bearer anything-at-all-123' } })).status).toBe(403)
  })
})
