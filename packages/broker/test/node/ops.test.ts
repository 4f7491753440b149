/** Ops HTTP: health, readiness and Prometheus metrics that move with traffic. */
import { describe, expect, it } from 'vitest'
import { Readiness } from '../../src/ops/readiness.js'
import { collect, connect, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  if (!line) throw new Error(`metric ${name} missing`)
  return Number(line.split(' ')[1])
}

describe('ops http', () => {
  it('/healthz and /readyz answer 200 on a running node', async () => {
    expect((await fetch(`${t.ops}/healthz`)).status).toBe(200)
    const ready = await fetch(`${t.ops}/readyz`)
    expect(ready.status).toBe(200)
  })

  it('/metrics counters move when messages flow', async () => {
    const before = await (await fetch(`${t.ops}/metrics`)).text()
    for (const name of ['culex_subscriptions', 'culex_retained_messages', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(before).toContain(name)
    }
    const sub = await connect(`mqtt://127.0.0.1:${t.node.ports.mqtt}`)
    const got = collect(sub)
    await sub.subscribeAsync(['m/a', 'm/b'], { qos: 1 })
    const pub = await connect(`mqtt://127.0.0.1:${t.node.ports.mqtt}`)
    for (let i = 0; i < 5; i++) await pub.publishAsync('m/a', 'x'.repeat(100), { qos: 1 })
    await pub.publishAsync('m/r', 'keep', { qos: 1, retain: true })
    await waitFor(() => got.length === 5, 5000, 'deliveries')

    const after = await (await fetch(`${t.ops}/metrics`)).text()
    expect(metric(after, 'culex_clients_connected')).toBe(2)
    expect(metric(after, 'culex_subscriptions')).toBe(2)
    expect(metric(after, 'culex_retained_messages')).toBe(1)
    // counted per topic: a new retained message on the topic replaces the old, an empty one deletes it [MQTT-3.3.1-5] [MQTT-3.3.1-10]
    await pub.publishAsync('m/r', 'again', { qos: 1, retain: true })
    await pub.publishAsync('m/r2', 'two', { qos: 1, retain: true })
    expect(metric(await (await fetch(`${t.ops}/metrics`)).text(), 'culex_retained_messages')).toBe(2)
    await pub.publishAsync('m/r', '', { qos: 1, retain: true })
    expect(metric(await (await fetch(`${t.ops}/metrics`)).text(), 'culex_retained_messages')).toBe(1)
    expect(metric(after, 'culex_messages_received_total') - metric(before, 'culex_messages_received_total')).toBe(6)
    expect(metric(after, 'culex_messages_delivered_total') - metric(before, 'culex_messages_delivered_total')).toBe(5)
    expect(metric(after, 'culex_bytes_received_total') - metric(before, 'culex_bytes_received_total')).toBeGreaterThan(500)
    expect(metric(after, 'culex_bytes_sent_total') - metric(before, 'culex_bytes_sent_total')).toBeGreaterThan(500)
  })

  it('a client id longer than 23 characters is accepted (raised default)', async () => {
    const id = `device-${'x'.repeat(120)}`
    const c = await connect(`mqtt://127.0.0.1:${t.node.ports.mqtt}`, { clientId: id })
    expect(c.connected).toBe(true)
  })

  it('unknown paths are 404', async () => {
    expect((await fetch(`${t.ops}/nope`)).status).toBe(404)
  })
})

describe('readiness', () => {
  it('is 503-worthy while starting, draining or a dependency is down', () => {
    const r = new Readiness()
    expect(r.status()).toEqual({ ready: false, reasons: ['starting'] })
    r.listening = true
    let redisUp = false
    r.add('redis', () => redisUp)
    expect(r.status().reasons).toEqual(['redis unavailable'])
    redisUp = true
    expect(r.status().ready).toBe(true)
    r.draining = true
    expect(r.status()).toEqual({ ready: false, reasons: ['draining'] })
  })
})
