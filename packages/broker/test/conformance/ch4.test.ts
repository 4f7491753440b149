/**
 * MQTT 3.1.1 chapter 4 (sessions, QoS flows, ordering, topic names and filters), byte level, in
 * every mode; a returning client and the subscribers move to the other node in two-node mode.
 */
import { expect, it } from 'vitest'
import { pkt, str } from './raw.js'
import { forEachMode, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, opts: Record<string, unknown> = {}) {
  const c = await m.raw(i)
  await c.connect({ clientId: m.id(name), ...opts })
  return c
}

forEachMode((m) => {
  it('[MQTT-4.1.0-2] a clean session lasts as long as its connection: its subscription keeps delivering', async () => {
    const topic = `live/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    for (let i = 1; i <= 3; i++) {
      await p.publish(topic, String(i), 1, false, i)
      const got = await s.expect('publish')
      s.send({ cmd: 'puback', messageId: got.messageId })
    }
  })

  it('[MQTT-4.3.2-2] the server acknowledges a QoS 1 PUBLISH with its id, and the same id afterwards is a new message', async () => {
    const topic = `q1/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 0)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'first', 1, false, 42)
    await p.publish(topic, 'second', 1, false, 42)
    expect([String((await s.expect('publish')).payload), String((await s.expect('publish')).payload)]).toEqual(['first', 'second'])
  })

  it('[MQTT-4.3.3-2] QoS 2 is delivered once: a resent PUBLISH (DUP 1) before PUBREL is not delivered again; after PUBCOMP the id is new', async () => {
    const topic = `q2/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 0)
    await s.subscribe(`${topic}-mark`, 0, 2)
    const p = await client(m, 0, 'p')
    p.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 9 })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 9 })
    p.send({ cmd: 'publish', topic, payload: 'once', qos: 2, dup: true, messageId: 9 })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 9 })
    p.send({ cmd: 'pubrel', messageId: 9 })
    expect(await p.expect('pubcomp')).toMatchObject({ messageId: 9 })
    await p.publish(topic, 'new', 2, false, 9)
    await p.publish(`${topic}-mark`, 'mark', 1, false, 10)
    expect((await s.until(`${topic}-mark`)).map((g) => String(g.payload))).toEqual(['once', 'new'])
  })

  it('[MQTT-4.3.3-2] a PUBREL for a packet id the server no longer holds still gets its PUBCOMP', async () => {
    const c = await client(m, 0, 'rel')
    c.send({ cmd: 'pubrel', messageId: 77 })
    expect((await c.expect('pubcomp')).frame).toEqual(Buffer.from([0x70, 0x02, 0x00, 77]))
  })

  it('[MQTT-4.3.3-2] [MQTT-4.1.0-1] a QoS 2 PUBLISH resent after a reconnect (DUP 1, same id) is delivered once, and its PUBREL completes it', async () => {
    const topic = `q2r/${m.id('t')}`
    const id = m.id('pub2')
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const p = await m.raw(0)
    await p.connect({ clientId: id, clean: false })
    p.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 11 })
    await p.expect('pubrec')
    p.destroy()
    const back = await m.raw(1)
    await back.connect({ clientId: id, clean: false })
    back.send({ cmd: 'publish', topic, payload: 'once', qos: 2, dup: true, messageId: 11 })
    expect(await back.expect('pubrec')).toMatchObject({ messageId: 11 })
    back.send({ cmd: 'pubrel', messageId: 11 })
    expect(await back.expect('pubcomp')).toMatchObject({ messageId: 11 })
    const got = [await s.expect('publish'), ...(await s.quiet(250))]
    expect(got.map((g) => String(g.payload))).toEqual(['once'])
  })

  it('[MQTT-3.8.4-6] [MQTT-3.3.5-1] [MQTT-3.10.4-2] an offline session queues at the granted QoS, once for overlapping filters, and nothing for a filter it unsubscribed', async () => {
    const b = m.id('off')
    const id = m.id('offline')
    const c = await m.raw(0)
    await c.connect({ clientId: id, clean: false })
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${b}/#`, qos: 1 }, { topic: `${b}/x`, qos: 0 }, { topic: `${b}/gone`, qos: 2 }] })
    await c.expect('suback')
    c.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [`${b}/gone`] })
    await c.expect('unsuback')
    await c.disconnect()
    const p = await client(m, 0, 'p')
    await p.publish(`${b}/x`, 'x', 2, false, 1)
    await p.publish(`${b}/y`, 'y', 2, false, 2)
    const back = await m.raw(1)
    await back.connect({ clientId: id, clean: false })
    const got = [await back.expect('publish'), await back.expect('publish'), ...(await back.quiet(250))]
    expect(got.map((g) => `${g.topic}:${g.qos}`)).toEqual([`${b}/x:1`, `${b}/y:1`])
    // their PUBACKs end them: nothing is sent again on the next return
    for (const g of got) back.send({ cmd: 'puback', messageId: g.messageId })
    await back.disconnect()
    const again = await m.raw(0)
    await again.connect({ clientId: id, clean: false })
    expect(await again.quiet(250)).toEqual([])
  })

  it('[MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-1] a returning session gets its unacknowledged PUBLISHes again, DUP 1, same ids, in order, and its PUBREL', async () => {
    const id = m.id('inflight')
    const topic = `inf/${id}`
    const c = await m.raw(0)
    await c.connect({ clientId: id, clean: false })
    await c.subscribe(topic, 2)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'a', 1, false, 1)
    await p.publish(topic, 'b', 2, false, 2)
    await p.publish(topic, 'c', 2, false, 3)
    const [a, b, cc] = [await c.expect('publish'), await c.expect('publish'), await c.expect('publish')]
    expect([a, b, cc].map((x) => `${x.payload}:${x.qos}:${x.dup}`)).toEqual(['a:1:false', 'b:2:false', 'c:2:false'])
    // c gets as far as PUBREL; a and b are not acknowledged at all
    c.send({ cmd: 'pubrec', messageId: cc.messageId })
    await c.expect('pubrel')
    c.destroy()
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false })).toMatchObject({ sessionPresent: true })
    const again = [await back.next(), await back.next(), await back.next()]
    const publishes = again.filter((x) => x.cmd === 'publish')
    expect(publishes.map((x) => `${x.payload}:${x.qos}:${x.dup}:${x.messageId}`)).toEqual([`a:1:true:${a.messageId}`, `b:2:true:${b.messageId}`])
    expect(publishes.map((x) => x.frame[0])).toEqual([0x3a, 0x3c]) // PUBLISH, DUP 1, QoS 1 / QoS 2
    expect(again.filter((x) => x.cmd === 'pubrel').map((x) => x.messageId)).toEqual([cc.messageId])
    // all acknowledged: nothing comes again on the next return
    back.send({ cmd: 'puback', messageId: a.messageId })
    back.send({ cmd: 'pubrec', messageId: b.messageId })
    expect(await back.expect('pubrel')).toMatchObject({ messageId: b.messageId })
    back.send({ cmd: 'pubcomp', messageId: b.messageId })
    back.send({ cmd: 'pubcomp', messageId: cc.messageId })
    await back.disconnect()
    const last = await m.raw(0)
    await last.connect({ clientId: id, clean: false })
    await p.publish(topic, 'mark', 1, false, 4)
    const seen = [await last.next()]
    while (seen.at(-1)!.cmd !== 'publish') seen.push(await last.next())
    expect(seen.map((x) => (x.cmd === 'publish' ? String(x.payload) : x.cmd))).toEqual(['mark'])
  })

  it('[MQTT-4.5.0-1] a message is added to the session of every matching subscriber, connected or not', async () => {
    const topic = `all/${m.id('t')}`
    const away = m.id('away')
    const a = await client(m, 0, 'x', { clientId: away, clean: false })
    await a.subscribe(topic, 1)
    await a.disconnect()
    const online = await client(m, 1, 'on')
    await online.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'both', 1)
    expect(String((await online.expect('publish')).payload)).toBe('both')
    const back = await m.raw(1)
    await back.connect({ clientId: away, clean: false })
    expect(String((await back.expect('publish')).payload)).toBe('both')
  })

  it('[MQTT-4.6.0-2] [MQTT-4.6.0-3] the server sends PUBACKs, and PUBRECs, each in the order their PUBLISHes arrived', async () => {
    const p = await client(m, 0, 'p')
    const ids = [5, 3, 9, 1, 7, 2, 8, 4]
    p.send(Buffer.concat(ids.map((id, i) => pkt(i % 2 ? 0x34 : 0x32, str('order/acks'), Buffer.from([0, id]), Buffer.from('x')))))
    const acks = []
    for (const _ of ids) acks.push(await p.next())
    const of = (cmd: string, list: Array<{ cmd: string; messageId?: unknown }>) => list.filter((a) => a.cmd === cmd).map((a) => a.messageId)
    expect(of('puback', acks)).toEqual(ids.filter((_, i) => i % 2 === 0))
    expect(of('pubrec', acks)).toEqual(ids.filter((_, i) => i % 2 === 1))
  })

  it('[MQTT-4.6.0-4] the server, sending QoS 2, sends PUBRELs in the order of the PUBRECs', async () => {
    const topic = `rel/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'p')
    for (let i = 1; i <= 4; i++) await p.publish(topic, String(i), 2, false, i)
    const got = []
    for (let i = 0; i < 4; i++) got.push((await s.expect('publish')).messageId as number)
    const order = [got[2]!, got[0]!, got[3]!, got[1]!]
    s.send(Buffer.concat(order.map((id) => Buffer.from([0x50, 0x02, id >> 8, id & 0xff]))))
    const rels = []
    for (let i = 0; i < 4; i++) rels.push((await s.expect('pubrel')).messageId)
    expect(rels).toEqual(order)
  })

  it('[MQTT-4.6.0-5] [MQTT-4.6.0-6] messages from one client on a topic reach a subscriber in the order published, per QoS', async () => {
    const topic = `ord/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    const n = 30
    const frames = []
    for (let i = 0; i < n; i++) frames.push(pkt(0x32, str(topic), Buffer.from([0, i + 1]), Buffer.from(String(i))))
    p.send(Buffer.concat(frames))
    const got = []
    for (let i = 0; i < n; i++) {
      const g = await s.expect('publish', 5000)
      got.push(Number(String(g.payload)))
      s.send({ cmd: 'puback', messageId: g.messageId })
    }
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i))
  })

  for (const filter of ['a/#/b', 'a#', 'a/b#', 'a+/b', 'a/+b', '+a']) {
    it(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] an invalid filter (${filter}) is never granted: SUBACK 0x80 or the connection is closed`, async () => {
      const c = await client(m, 0, 'bad')
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] })
      await c.closedBy().catch(() => {})
      const got = c.unread()
      if (got.length > 0) expect(got).toMatchObject([{ cmd: 'suback', granted: [0x80] }])
      else expect(c.closed).toBe(true)
    })
  }

  it('[MQTT-4.7.1-2] [MQTT-4.7.1-3] "#" matches the parent level and "+" matches one whole level, also empty and first/last', async () => {
    const b = m.id('w')
    const s = await client(m, 1, 's')
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${b}/sport/#`, qos: 0 }, { topic: `+/${b}/+`, qos: 0 }, { topic: `${b}-mark`, qos: 0 }] })
    await s.expect('suback')
    const p = await client(m, 0, 'p')
    for (const t of [`${b}/sport`, `${b}/sport/tennis/p1`, `/${b}/`, `${b}/sportx`, `x/${b}/y/z`, `${b}-mark`]) await p.publish(t, t, 1)
    const got = await s.until(`${b}-mark`)
    expect(got.map((g) => g.topic).sort()).toEqual([`/${b}/`, `${b}/sport`, `${b}/sport/tennis/p1`].sort())
  })

  it('[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with $', async () => {
    const b = m.id('d')
    const wild = await client(m, 1, 'wild')
    wild.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `+/${b}`, qos: 0 }, { topic: '#', qos: 0 }] })
    await wild.expect('suback')
    const exact = await client(m, 1, 'exact')
    await exact.subscribe(`$x/${b}`, 0)
    const p = await client(m, 0, 'p')
    await p.publish(`$x/${b}`, 'dollar', 1)
    await p.publish(`mark/${b}`, 'mark', 1)
    expect((await exact.expect('publish')).topic).toBe(`$x/${b}`)
    // "+/b" and "#" both match the marker, published after the $ topic
    expect((await wild.until(`mark/${b}`)).filter((g) => String(g.topic).startsWith('$'))).toEqual([])
  })

  it('[MQTT-4.7.2-1] a SUBSCRIBE whose filter starts with a wildcard gets no retained message of a topic starting with $', async () => {
    const b = m.id('rd')
    const p = await client(m, 0, 'p')
    await p.publish(`$x/${b}/state`, 'dollar', 1, true)
    await p.publish(`r/${b}/state`, 'plain', 1, true)
    // the retained messages come filter by filter (one node) or in byte order (a cluster), `$x/...`
    // before `r/...` either way here: once `last` is in, a `$` one would have come before it
    const topicsFor = async (name: string, filters: string[], last: string): Promise<string[]> => {
      const c = await client(m, 1, name)
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 0 })) })
      // until() gives what came before `last`
      return [...new Set([...(await c.until(last)).filter((g) => g.cmd === 'publish').map((g) => String(g.topic)), last])].sort()
    }
    expect(await topicsFor('wild', [`+/${b}/state`], `r/${b}/state`)).toEqual([`r/${b}/state`])
    // a filter that matches the $ topic by the rule, beside one that starts with a wildcard: it comes
    expect(await topicsFor('both', [`$x/${b}/+`, `+/${b}/state`], `r/${b}/state`)).toEqual([`$x/${b}/state`, `r/${b}/state`])
    expect(await topicsFor('exact', [`$x/${b}/state`], `$x/${b}/state`)).toEqual([`$x/${b}/state`])
  })

  it('[MQTT-4.7.1-3] + matches an empty level in a retained topic too: r/b/+ gets the retained message of r/b/', async () => {
    const b = m.id('re')
    const p = await client(m, 0, 'p')
    await p.publish(`r/${b}/`, 'empty level', 1, true)
    const c = await client(m, 1, 's')
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `r/${b}/+`, qos: 0 }] })
    // until() resolves once it came (and fails after 3 s without it); nothing else came before it
    expect((await c.until(`r/${b}/`)).filter((g) => g.cmd === 'publish')).toEqual([])
  })

  it('[MQTT-4.7.3-1] a PUBLISH with an empty topic name closes the connection', async () => {
    const c = await client(m, 0, 'empty')
    c.send(pkt(0x30, str(''), Buffer.from('x')))
    await c.closedBy()
  })

  it('[MQTT-4.7.3-1] a SUBSCRIBE with an empty topic filter is not granted: SUBACK 0x80 or the connection is closed', async () => {
    const c = await client(m, 0, 'emptyf')
    c.send(pkt(0x82, Buffer.from([0, 1]), str(''), Buffer.from([0])))
    await c.closedBy().catch(() => {})
    const got = c.unread()
    if (got.length > 0) expect(got).toMatchObject([{ cmd: 'suback', granted: [0x80] }])
    else expect(c.closed).toBe(true)
  })

  it('[MQTT-4.7.3-4] topics are matched without normalization: case, empty levels, trailing "/" and Unicode forms differ', async () => {
    const b = m.id('n')
    const s = await client(m, 1, 's')
    await s.subscribe(`${b}/caf\u00e9/a`, 0)
    await s.subscribe(`${b}-mark`, 0, 2)
    const p = await client(m, 0, 'p')
    for (const t of [`${b.toUpperCase()}/caf\u00e9/a`, `${b}//caf\u00e9/a`, `${b}/caf\u00e9/a/`, `${b}/cafe\u0301/a`, `${b}/caf\u00e9/a`, `${b}-mark`]) await p.publish(t, t, 1)
    expect((await s.until(`${b}-mark`)).map((g) => g.topic)).toEqual([`${b}/caf\u00e9/a`])
  })
})
