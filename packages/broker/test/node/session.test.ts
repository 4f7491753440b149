/** Sessions, wills, keepalive and client-id takeover on one node. */
import { createConnection } from 'node:net'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { collect, connect, sleep, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

describe('sessions', () => {
  it('last will is published on an abrupt disconnect [MQTT-3.1.2-8] and not on a clean DISCONNECT [MQTT-3.1.2-10]', async () => {
    const watcher = await connect(t.url)
    const got = collect(watcher)
    await watcher.subscribeAsync('will/#', { qos: 1 })

    const clean = await connect(t.url, { clientId: 'will-clean', will: { topic: 'will/clean', payload: Buffer.from('gone'), qos: 1, retain: false } })
    await clean.endAsync()

    const abrupt = await connect(t.url, { clientId: 'will-abrupt', will: { topic: 'will/abrupt', payload: Buffer.from('gone'), qos: 1, retain: false } })
    ;(abrupt as unknown as { stream: { destroy(): void } }).stream.destroy()

    await waitFor(() => got.length >= 1, 5000, 'will message')
    await sleep(300)
    expect(got.map((m) => m.topic)).toEqual(['will/abrupt'])
  })

  it('a clean:false session keeps its subscription and gets offline QoS 1 messages in order [MQTT-3.1.2-4] [MQTT-3.1.2-5]', async () => {
    const opts = { clientId: 'persistent-1', clean: false }
    const first = await connect(t.url, opts)
    await first.subscribeAsync('offline/t', { qos: 1 })
    await first.endAsync()

    const pub = await connect(t.url)
    for (let i = 0; i < 10; i++) await pub.publishAsync('offline/t', `o${i}`, { qos: 1 })

    const again = await connect(t.url, opts)
    const got = collect(again)
    expect(again.connected).toBe(true)
    await waitFor(() => got.length >= 10, 5000, 'queued messages')
    await sleep(100)
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `o${i}`))
    // the subscription itself survived: a new message arrives without subscribing again
    await pub.publishAsync('offline/t', 'live', { qos: 1 })
    await waitFor(() => got.length === 11, 5000, 'live message')
  })

  it('keepalive expiry closes a silent client after 1.5x the keepalive [MQTT-3.1.2-24]', async () => {
    const sock = createConnection(t.node.ports.mqtt, '127.0.0.1')
    await once(sock, 'connect')
    sock.resume()
    // CONNECT, MQTT 3.1.1, clean session, keepalive 1 s, client id "silent"; then never a PINGREQ
    const id = Buffer.from('silent')
    const varHeader = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 1])
    const body = Buffer.concat([varHeader, Buffer.from([0, id.length]), id])
    sock.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
    const started = Date.now()
    await once(sock, 'close')
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(1000)
    expect(elapsed).toBeLessThan(4000)
  })

  it('the same client id connecting twice closes the first connection [MQTT-3.1.4-2]', async () => {
    const first = await connect(t.url, { clientId: 'twin' })
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()))
    const second = await connect(t.url, { clientId: 'twin' })
    await closed
    expect(first.connected).toBe(false)
    expect(second.connected).toBe(true)
    await waitFor(() => t.node.broker.connectedClients === 1, 2000, 'one connection left')
  })
})
