/**
 * Node-wide flow control (src/broker/backpressure.ts) must slow publishers down only while the
 * subscribers that read are behind: a subscriber that reads nothing, whose QoS 0 messages the
 * slow-consumer guard drops, must not hold every other publisher of the node.
 */
import { connect as netConnect } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import { expect, it } from 'vitest'
import { collect, connect, sleep, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

it('a QoS 0 subscriber that never reads does not stall the other publishers of the node', async () => {
  // the non-reader: subscribes, then never reads its socket again
  const raw = netConnect(t.node.ports.mqtt, '127.0.0.1')
  await once(raw, 'connect')
  raw.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'never-reads', keepalive: 0 }))
  raw.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 0 }] }))
  await sleep(200)
  raw.pause()

  const flooder = await connect(t.url)
  const canary = await connect(t.url)
  const got = collect(canary)
  await canary.subscribeAsync('canary/t', { qos: 1 })
  // 100,000 QoS 0 messages of 256 bytes: far more than the kernel's socket buffers take
  const payload = Buffer.alloc(256, 121)
  for (let i = 0; i < 100_000; i++) {
    flooder.publish('flood/x', payload, { qos: 0 })
    if (i % 1000 === 999) await sleep(1)
  }
  // the guard calls the non-reader slow after a second; from then on its QoS 0 messages are
  // dropped and the flood flows on: every one of the 100,000 publishes is taken in
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${t.node.ports.http}/metrics`)).text()
    return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0)
  }
  await waitFor(async () => (await metric('culex_messages_received_total')) >= 100_000, 20_000, 'the whole flood taken in').catch(async (err) => {
    throw new Error(`${(err as Error).message}: received ${await metric('culex_messages_received_total')}, queued ${await metric('culex_queued_deliveries')}`)
  })
  expect(await metric('culex_messages_dropped_total')).toBeGreaterThan(0)
  expect(await metric('culex_queued_deliveries')).toBeLessThan(1000)
  // and the well-behaved client's publishes go through at once, not after drain_timeout_ms (60 s)
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now()
    await canary.publishAsync('canary/t', `c${i}`, { qos: 1 })
    await waitFor(() => got.length === i + 1, 3000, `canary message ${i}`)
    expect(Date.now() - t0).toBeLessThan(1000)
  }
  raw.destroy()
}, 60_000)
