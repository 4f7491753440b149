/**
 * MQTT 5.0 chapters 3.14 (DISCONNECT) and 3.15 (AUTH), and the Will Message of 3.1.2-3.1.3, byte
 * level, in every mode: DISCONNECT 0x00 drops the will, 0x04 and a lost connection publish it, a
 * Will Delay Interval holds it while the client may return (on the other node in two-node mode),
 * its retain flag and user properties; the Session Expiry Interval of a DISCONNECT; AUTH without
 * an authentication method.
 */
import { expect } from 'vitest'
import { pkt, type Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

/** a subscriber on node 1 to `topic` (QoS 1, Retain As Published), and a marker topic */
async function watch(m: Mode, topic: string): Promise<Raw> {
  const w = await m.raw(1)
  await w.connect({ clientId: m.id('watch') })
  w.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1, rap: true }, { topic: `${topic}-mark`, qos: 0 }] })
  await w.expect('suback')
  return w
}

/** a client on node 0 with a will on `topic` */
async function willing(m: Mode, topic: string, opts: { id?: string; will?: Record<string, unknown>; props?: Record<string, unknown> } = {}): Promise<Raw> {
  const c = await m.raw(0)
  const will = { topic, payload: Buffer.from('gone'), qos: 1, retain: false, ...opts.will }
  const clean = !opts.props?.sessionExpiryInterval
  expect(await c.connect({ clientId: opts.id ?? m.id('will'), clean, will, properties: opts.props ?? {} })).toMatchObject({ reasonCode: 0 })
  return c
}

/** what `w` got on `topic` before a marker published now */
async function before(m: Mode, w: Raw, topic: string): Promise<Raw['packets']> {
  const p = await m.raw(0)
  await p.connect({ clientId: m.id('mark') })
  await p.publish(`${topic}-mark`, 'mark')
  return (await w.until(`${topic}-mark`)).filter((x) => x.cmd === 'publish')
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-3.14.4-3] [MQTT-3.1.2-10] DISCONNECT 0x00 discards the will: it is never published', async () => {
    const topic = `w0/${m.id('t')}`
    const w = await watch(m, topic)
    const c = await willing(m, topic)
    await c.disconnect({ reasonCode: 0 })
    expect(await before(m, w, topic)).toEqual([])
  })

  it('[MQTT-3.1.2-7] [MQTT-3.1.2-8] [MQTT-3.1.2-14] DISCONNECT 0x04 (with will) and a lost connection publish the will, not retained', async () => {
    const topic = `w4/${m.id('t')}`
    const w = await watch(m, topic)
    const a = await willing(m, topic, { will: { payload: Buffer.from('by 0x04') } })
    await a.disconnect({ reasonCode: 0x04 })
    const got = await w.expect('publish', 5000)
    expect([String(got.payload), got.retain]).toEqual(['by 0x04', false])
    w.send({ cmd: 'puback', messageId: got.messageId })
    const b = await willing(m, topic, { will: { payload: Buffer.from('by loss') } })
    b.destroy()
    expect(String((await w.expect('publish', 5000)).payload)).toBe('by loss')
  })

  it('[MQTT-3.1.2-15] [MQTT-3.1.3-10] a will with Will Retain 1 is published retained, its user properties in their order', async () => {
    const topic = `wr/${m.id('t')}`
    const c = await willing(m, topic, { will: { retain: true, properties: { userProperties: { z: '1', a: '2' }, contentType: 'text/plain' } } })
    c.destroy()
    const w = await watch(m, topic)
    const got = await w.expect('publish', 5000)
    expect([String(got.payload), got.retain]).toEqual(['gone', true])
    const props = got.properties as { userProperties: Record<string, string>; contentType: string }
    expect([Object.entries(props.userProperties), props.contentType]).toEqual([[['z', '1'], ['a', '2']], 'text/plain'])
  })

  it('[MQTT-3.1.3-9] a client back before its Will Delay Interval passed (on the other node in two-node mode): the will is not sent', async () => {
    const topic = `wd/${m.id('t')}`
    const id = m.id('delayed')
    const w = await watch(m, topic)
    const c = await willing(m, topic, { id, will: { properties: { willDelayInterval: 1 } }, props: { sessionExpiryInterval: 30 } })
    c.destroy()
    await c.closedBy()
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 30 } })).toMatchObject({ sessionPresent: true })
    await sleep(1600)
    expect(await before(m, w, topic)).toEqual([])
  })

  it('[MQTT-3.1.2-8] a will with a Will Delay Interval is published once the delay passed and the client did not return', async () => {
    const topic = `wd2/${m.id('t')}`
    const w = await watch(m, topic)
    const c = await willing(m, topic, { will: { properties: { willDelayInterval: 1 } }, props: { sessionExpiryInterval: 30 } })
    const t0 = Date.now()
    c.destroy()
    expect(String((await w.expect('publish', 6000)).payload)).toBe('gone')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
  })

  it('[MQTT-4.1.0-2] a DISCONNECT with Session Expiry Interval 0 ends a session that had 60 s', async () => {
    const id = m.id('end')
    const c = await m.raw(0)
    await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await c.subscribe(`end/${id}`, 1)
    await c.disconnect({ reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: false })
  })

  it('[MQTT-3.14.1-1] [MQTT-2.1.3-1] a DISCONNECT with reserved flags set closes the connection; the will goes out as after a lost connection', async () => {
    const topic = `wf/${m.id('t')}`
    const w = await watch(m, topic)
    const c = await willing(m, topic)
    c.send(pkt(0xe1, Buffer.from([0])))
    await c.closedBy()
    expect(String((await w.expect('publish', 5000)).payload)).toBe('gone')
  })

  it('[MQTT-3.15.1-1] [MQTT-4.12.0-6] an AUTH from a client that connected without an authentication method closes the connection, and no AUTH is sent', async () => {
    const c = await m.raw(0)
    await c.connect({ clientId: m.id('auth') })
    c.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-1' } })
    await c.closedBy()
    expect(c.packets.filter((p) => p.cmd === 'auth')).toEqual([])
  })
})
