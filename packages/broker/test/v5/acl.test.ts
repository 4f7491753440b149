/**
 * ACLs and limits speak MQTT 5: a v5 client's denied QoS 1/2 PUBLISH gets PUBACK/PUBREC 0x87 and
 * its connection stays (a 3.1.1 client's is closed [MQTT-3.3.5-2], unchanged); a denied filter
 * gets SUBACK 0x87, a filter Culex cannot take 0x8F (MQTT 5.0 §3.4.2.1, §3.5.2.1, §3.9.3).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { metric, startTestNode, stopAll, tempDir, waitFor, writeUsers } from '../helpers/security-node.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'

const ACL = `
all:
  - allow: pubsub
    topic: devices/%u/#
roles:
  service:
    - allow: pubsub
      topic: "#"
    - deny: subscribe
      topic: secret/#
`
const PASS = 'password-123'
let node: CulexNode
let url: string

beforeAll(async () => {
  const dir = tempDir()
  const users = join(dir, 'users.txt')
  const acl = join(dir, 'acl.yaml')
  await writeUsers(users, [
    { name: 'alice', password: PASS },
    { name: 'svc', password: PASS, roles: ['service'] },
  ])
  writeFileSync(acl, ACL)
  node = await startTestNode({ users_file: users, acl_file: acl })
  url = `mqtt://127.0.0.1:${node.ports.mqtt}`
})
afterAll(async () => {
  await closeAllClients()
  await closeRaw()
  await stopAll()
})

describe('PUBLISH', () => {
  it('a v5 client\'s denied PUBLISH gets PUBACK 0x87 (QoS 1) and PUBREC 0x87 (QoS 2), reaches no subscriber, and the connection stays', async () => {
    const svc = await mqttConnect(url, { protocolVersion: 5, clientId: 'acl5-svc', username: 'svc', password: PASS })
    await svc.subscribeAsync('devices/#', { qos: 1 })
    const got = collect(svc)
    const denied0 = await metric(node.ports.http, 'culex_publish_denied_total')
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'acl5-alice', protocolVersion: 5, username: 'alice', password: PASS })
    raw.send({ cmd: 'publish', topic: 'devices/bob/t', payload: 'q1', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'devices/bob/t', payload: 'q2', qos: 2, messageId: 2 })
    raw.send({ cmd: 'publish', topic: 'devices/bob/t', payload: 'q0', qos: 0 })
    raw.send({ cmd: 'publish', topic: 'devices/alice/t', payload: 'ok', qos: 1, messageId: 3 })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').length === 3, 5000, 'three acknowledgements')
    const acks = raw.packets.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').map((p) => [p.cmd, p.messageId, p.reasonCode ?? 0])
    // PUBACKs in the order of their PUBLISHes [MQTT-4.6.0-2]
    expect(acks).toEqual([
      ['puback', 1, 0x87],
      ['pubrec', 2, 0x87],
      ['puback', 3, 0],
    ])
    await waitFor(() => got.length === 1, 5000, 'the allowed message')
    expect(got.map((g) => g.payload)).toEqual(['ok'])
    expect(raw.closed).toBe(false)
    expect((await metric(node.ports.http, 'culex_publish_denied_total')) - denied0).toBe(3)
  })

  it('a 3.1.1 client\'s denied PUBLISH still closes its connection [MQTT-3.3.5-2]', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'acl4-alice', username: 'alice', password: PASS })
    raw.send({ cmd: 'publish', topic: 'devices/bob/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until(() => raw.closed, 5000, 'closed')
    expect(raw.packets.some((p) => p.cmd === 'puback')).toBe(false)
  })
})

describe('SUBSCRIBE', () => {
  it('v5 SUBACK: 0x87 for a denied filter, 0x8F for invalid ones (wildcard not a whole level, empty, bad share name), in the order of the filters; the connection stays', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'acl5-sub', protocolVersion: 5, username: 'svc', password: PASS })
    const topics = ['ok/#', 'a#', 'secret/x', '', '$share/+/x', '$share/g/ok/t', 'a/+b']
    raw.send({ cmd: 'subscribe', messageId: 5, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
    expect(raw.packets.find((p) => p.cmd === 'suback')!.granted).toEqual([1, 0x8f, 0x87, 0x8f, 0x8f, 1, 0x8f])
    raw.send({ cmd: 'subscribe', messageId: 6, subscriptions: [{ topic: 'x#', qos: 0 }] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback' && p.messageId === 6), 5000, 'SUBACK of an all-invalid SUBSCRIBE')
    expect(raw.packets.find((p) => p.cmd === 'suback' && p.messageId === 6)!.granted).toEqual([0x8f])
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
  })
})
