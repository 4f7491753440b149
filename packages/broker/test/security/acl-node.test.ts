/** Topic ACLs enforced by a real node (acl_file), seen from MQTT clients. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { connect, metric, rawConnected, sleep, startTestNode, stopAll, suback, tempDir, waitFor, writeUsers } from '../helpers/security-node.js'

const ACL = `
all:
  - allow: pubsub
    topic: devices/%u/#
roles:
  readonly:
    - allow: subscribe
      topic: "#"
  service:
    - allow: pubsub
      topic: "#"
    - deny: subscribe
      topic: secret/#
`

let node: CulexNode
let url: string
let aclPath: string
const PASS = 'password-123'

beforeAll(async () => {
  const dir = tempDir()
  const users = join(dir, 'users.txt')
  aclPath = join(dir, 'acl.yaml')
  await writeUsers(users, [
    { name: 'alice', password: PASS },
    { name: 'bob', password: PASS },
    { name: 'rita', password: PASS, roles: ['readonly'] },
    { name: 'svc', password: PASS, roles: ['service'] },
  ])
  writeFileSync(aclPath, ACL)
  node = await startTestNode({ users_file: users, acl_file: aclPath })
  url = `mqtt://127.0.0.1:${node.ports.mqtt}`
})
afterAll(stopAll)

function inbox(c: MqttClient): string[] {
  const got: string[] = []
  c.on('message', (t, p) => got.push(`${t} ${p.toString()}`))
  return got
}
const closed = (c: MqttClient): Promise<void> => new Promise((r) => (c.connected ? c.once('close', () => r()) : r()))

describe('ACL', () => {
  it('namespaces with %u: alice publishes to devices/alice/#, and her PUBLISH to devices/bob/# reaches no subscriber and closes her connection [MQTT-3.3.5-2]', async () => {
    const svc = await connect(url, { username: 'svc', password: PASS })
    await svc.subscribeAsync('devices/#', { qos: 1 })
    const got = inbox(svc)
    const alice = await connect(url, { username: 'alice', password: PASS })
    await alice.publishAsync('devices/alice/temp', '21', { qos: 1 })
    await waitFor(() => got.includes('devices/alice/temp 21'), 3000, 'allowed publish')
    const denied0 = await metric(node.ports.http, 'culex_publish_denied_total')
    alice.publish('devices/bob/temp', 'forged', { qos: 1 })
    await closed(alice)
    await sleep(200)
    expect(got).not.toContain('devices/bob/temp forged')
    expect(await metric(node.ports.http, 'culex_publish_denied_total')).toBe(denied0 + 1)
  })

  it('[MQTT-3.9.3-2] a shared subscription $share/g/f needs subscribe permission on f, and gets only what f may read', async () => {
    const alice = await connect(url, { username: 'alice', password: PASS })
    expect(await suback(alice, ['$share/g/devices/alice/#', '$share/g/devices/bob/#', '$share/g/devices/#'])).toEqual([1, 128, 128])
    const got = inbox(alice)
    const svc = await connect(url, { username: 'svc', password: PASS })
    await svc.publishAsync('devices/bob/y', 'not for alice', { qos: 1 })
    await svc.publishAsync('devices/alice/y', 'shared for alice', { qos: 1 })
    await waitFor(() => got.length > 0, 3000, 'alice gets her topic through the group')
    await sleep(200)
    expect(got).toEqual(['devices/alice/y shared for alice'])
  })

  it('[MQTT-3.9.3-2] answers 0x80 for a denied filter and grants the others of the same SUBSCRIBE', async () => {
    const alice = await connect(url, { username: 'alice', password: PASS })
    expect(await suback(alice, ['devices/alice/#', 'devices/bob/#', 'devices/#'])).toEqual([1, 128, 128])
    const got = inbox(alice)
    const bob = await connect(url, { username: 'bob', password: PASS })
    await bob.publishAsync('devices/bob/x', 'for bob only', { qos: 1 })
    const svc = await connect(url, { username: 'svc', password: PASS })
    await svc.publishAsync('devices/alice/x', 'for alice', { qos: 1 })
    await waitFor(() => got.length > 0, 3000, 'alice gets her topic')
    await sleep(200)
    expect(got).toEqual(['devices/alice/x for alice'])
  })

  it('lets a readonly user subscribe and not publish; its denied publish reaches no subscriber', async () => {
    const svc = await connect(url, { username: 'svc', password: PASS })
    await svc.subscribeAsync('news/#', { qos: 0 })
    const got = inbox(svc)
    const rita = await connect(url, { username: 'rita', password: PASS })
    const granted = await rita.subscribeAsync('news/#', { qos: 1 })
    expect(granted[0]!.qos).toBe(1)
    const ritaGot = inbox(rita)
    await svc.publishAsync('news/a', 'hello', { qos: 1 })
    await waitFor(() => ritaGot.includes('news/a hello'), 3000, 'readonly user receives')
    rita.publish('news/a', 'from rita', { qos: 0 })
    await closed(rita)
    await sleep(200)
    expect(got).not.toContain('news/a from rita')
  })

  it('withholds messages a deny rule covers from a wider allowed subscription', async () => {
    const svc = await connect(url, { username: 'svc', password: PASS })
    expect(await suback(svc, ['#', 'secret/#'])).toEqual([1, 128])
    const got = inbox(svc)
    const other = await connect(url, { username: 'svc', password: PASS })
    await other.publishAsync('secret/plans', 'x', { qos: 1 })
    await other.publishAsync('open/plans', 'y', { qos: 1 })
    await waitFor(() => got.includes('open/plans y'), 3000, 'allowed message')
    await sleep(100)
    expect(got).not.toContain('secret/plans x')
  })

  it('keeps $SYS closed to publishers even when a rule allows "#" (raw PUBLISH closes the connection)', async () => {
    const raw = await rawConnected(node.ports.mqtt, { username: 'svc', password: PASS })
    raw.send({ cmd: 'publish', topic: '$SYS/x/new/clients', payload: Buffer.from('svc'), qos: 0 })
    expect(await raw.closedWithin(2000)).toBe(true)
  })

  it('applies an ACL file change to connected clients within a second', async () => {
    const bob = await connect(url, { username: 'bob', password: PASS })
    await bob.subscribeAsync('devices/bob/#', { qos: 1 })
    const got = inbox(bob)
    const svc = await connect(url, { username: 'svc', password: PASS })
    await svc.publishAsync('devices/bob/1', 'before', { qos: 1 })
    await waitFor(() => got.includes('devices/bob/1 before'), 3000, 'delivery before the change')
    // revoke the everyone rule: bob keeps his subscription but gets nothing more, and may no longer subscribe
    writeFileSync(aclPath, ACL.replace('devices/%u/#', 'nothing/here'))
    const t0 = Date.now()
    await waitFor(
      async () => {
        const probe = await connect(url, { username: 'bob', password: PASS })
        const [g] = await suback(probe, 'devices/bob/#', 0)
        await probe.endAsync()
        return g === 128
      },
      1500,
      'new ACL applied',
    )
    expect(Date.now() - t0).toBeLessThan(1000)
    await svc.publishAsync('devices/bob/1', 'after', { qos: 1 })
    await sleep(300)
    expect(got).not.toContain('devices/bob/1 after')
    writeFileSync(aclPath, ACL)
  })
})
