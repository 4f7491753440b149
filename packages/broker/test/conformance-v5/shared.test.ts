/**
 * MQTT 5.0 section 4.8.2 (Shared Subscriptions) and the No Local option on them (3.8.3.1), byte
 * level, in every mode: share names Culex refuses, the QoS granted to a member, and what becomes
 * of a message handed to a member that refuses it or goes away. Publishers on node 0, members on
 * node 1 (the other node in two-node mode); a returning member comes back on node 0.
 */
import { expect } from 'vitest'
import type { Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, opts: Record<string, unknown> = {}): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId: m.id(name), ...opts })).toMatchObject({ reasonCode: 0 })
  return c
}

/** SUBSCRIBE `subscriptions`, then the SUBACK's reason codes */
async function sub(c: Raw, subscriptions: Array<Record<string, unknown>>, messageId = 1): Promise<number[]> {
  c.send({ cmd: 'subscribe', messageId, subscriptions })
  const ack = await c.expect('suback')
  expect(ack.messageId).toBe(messageId)
  return ack.granted as number[]
}

const publishes = (ps: Raw['packets']): string[] => ps.filter((x) => x.cmd === 'publish').map((x) => String(x.payload))

/** resolves once the /metrics of the members' node (node 1) have a line matching `re` (polled every 50 ms) */
async function metricShows(m: Mode, re: RegExp, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    if (re.test(await (await fetch(`http://127.0.0.1:${m.nodes[m.nodes.length - 1]!.ports.http}/metrics`)).text())) return
    if (Date.now() > until) throw new Error(`timed out waiting for ${re} in /metrics`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-3.8.3-4] No Local 1 on a Shared Subscription is a Protocol Error: DISCONNECT 0x82, closed, no SUBACK', async () => {
    const c = await client(m, 1, 'nl-share')
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${m.id('t')}`, qos: 1, nl: true }] })
    await c.closedBy()
    expect(c.packets.map((p) => [p.cmd, p.reasonCode])).toEqual([
      ['connack', 0],
      ['disconnect', 0x82],
    ])
  })

  it('[MQTT-3.8.3-4] No Local 1 on a Shared Subscription sent right behind the CONNECT, before the CONNACK: closed, no SUBACK', async () => {
    const c = await m.raw(1)
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: m.id('nl-early') })
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${m.id('t')}`, qos: 1, nl: true }] })
    await c.closedBy()
    expect(c.packets.filter((p) => p.cmd === 'suback')).toEqual([])
  })

  it('[MQTT-4.8.2-1] [MQTT-4.8.2-2] a share name that is empty, holds "+" or "#", or has no "/" and Topic Filter after it gets SUBACK 0x8F; the connection stays', async () => {
    const t = m.id('t')
    const c = await client(m, 1, 'names')
    const bad = ['$share//a', '$share/g', '$share/g/', '$share/+/a', '$share/#/a', '$share/g+/a', '$share/#']
    expect(await sub(c, [...bad.map((topic) => ({ topic: topic.replace('/a', `/${t}`), qos: 1 })), { topic: `$share/ok/${t}`, qos: 1 }])).toEqual([...bad.map(() => 0x8f), 1])
    const p = await client(m, 0, 'pub')
    await p.publish(t, 'to the group', 1)
    const got = await c.expect('publish')
    expect([got.topic, String(got.payload)]).toEqual([t, 'to the group'])
  })

  it('[MQTT-4.8.2-3] a member gets a shared message at the QoS granted to its subscription (the lower of the two)', async () => {
    const t = m.id('t')
    const q0 = await client(m, 1, 'q0')
    expect(await sub(q0, [{ topic: `$share/a/${t}`, qos: 0 }])).toEqual([0])
    const q1 = await client(m, 1, 'q1')
    expect(await sub(q1, [{ topic: `$share/b/${t}`, qos: 1 }])).toEqual([1])
    const q2 = await client(m, 1, 'q2')
    expect(await sub(q2, [{ topic: `$share/c/${t}`, qos: 2 }])).toEqual([2])
    const p = await client(m, 0, 'pub')
    await p.publish(t, 'two', 2)
    await p.publish(t, 'one', 1, false, 2)
    const got = async (c: Raw): Promise<Array<[string, number]>> => [await c.expect('publish'), await c.expect('publish')].map((x) => [String(x.payload), x.qos as number])
    expect(await got(q0)).toEqual([['two', 0], ['one', 0]])
    expect(await got(q1)).toEqual([['two', 1], ['one', 1]])
    expect(await got(q2)).toEqual([['two', 2], ['one', 1]])
  })

  /**
   * Member `a` (Session Expiry `expiry`) of a group gets `first` (at `qos`) and `second` (QoS 1);
   * it answers `first` with `ack` (a PUBACK / PUBREC with that reason code, for 0x00 it waits for
   * the PUBREL) or not at all, leaves `second` unacknowledged; member `b` joins; `a`'s connection
   * drops. Returns what `b` got: `second` goes to it (a QoS 1 message may go to another member as
   * soon as the connection to the first is lost, §4.8.2), `first` must not, and would come with it.
   */
  async function memberLeaves(qos: 1 | 2, ack: number | undefined, expiry: number): Promise<{ id: string; t: string; first: Raw['packets'][number]; b: Raw; toB: string[] }> {
    const id = m.id('a')
    const t = m.id('t')
    const a = await client(m, 1, 'a', { clientId: id, clean: expiry === 0, properties: { sessionExpiryInterval: expiry } })
    await sub(a, [{ topic: `$share/g/${t}`, qos }])
    const p = await client(m, 0, 'pub')
    await p.publish(t, 'first', qos)
    await p.publish(t, 'second', 1, false, 2)
    const first = await a.expect('publish')
    expect(String((await a.expect('publish')).payload)).toBe('second')
    if (ack !== undefined) {
      a.send({ cmd: qos === 1 ? 'puback' : 'pubrec', messageId: first.messageId, reasonCode: ack })
      if (ack === 0 && qos === 2) await a.expect('pubrel')
    }
    a.send({ cmd: 'pingreq' })
    await a.expect('pingresp')
    const b = await client(m, 1, 'b')
    await sub(b, [{ topic: `$share/g/${t}`, qos: 2 }])
    a.destroy()
    const toB = publishes([await b.expect('publish', 5000), ...(await b.quiet(300))])
    return { id, t, first, b, toB }
  }

  it('[MQTT-4.8.2-6] after a PUBACK 0x80 to a shared QoS 1 delivery the message is discarded: not sent to another member', async () => {
    expect((await memberLeaves(1, 0x80, 0)).toB).toEqual(['second'])
  })

  it('[MQTT-4.8.2-6] after a PUBREC 0x80 to a shared QoS 2 delivery the message is discarded: not sent to another member', async () => {
    expect((await memberLeaves(2, 0x80, 0)).toB).toEqual(['second'])
  })

  it('[MQTT-4.8.2-5] a shared QoS 2 message whose member session ends before it acknowledged it is not sent to another member', async () => {
    expect((await memberLeaves(2, undefined, 0)).toB).toEqual(['second'])
  })

  it('[MQTT-4.8.2-5] a shared QoS 2 message stays with a member whose session expires while it is away (Session Expiry 1): gone with the session, sent to no other member', async () => {
    const { id, t, b, toB } = await memberLeaves(2, undefined, 1)
    expect(toB).toEqual(['second'])
    // `a` went offline on its node before `b` got `second`; 1 s after its connection ended its
    // session expired, and it left the group with it
    await metricShows(m, new RegExp(`^culex_shared_members\\{group="g/${t}",state="offline"\\} 0$`, 'm'))
    const a = await m.raw(0)
    expect(await a.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: false })
    a.send({ cmd: 'pingreq' })
    await a.expect('pingresp')
    expect(publishes(await a.quiet(300))).toEqual([])
    expect(publishes(b.packets)).toEqual(['second'])
  })

  it('[MQTT-4.8.2-4] a shared QoS 2 message a member did not acknowledge stays its: not sent to another member, sent again (DUP 1, same id) when it reconnects', async () => {
    const { id, first, toB } = await memberLeaves(2, undefined, 60)
    expect(toB).toEqual(['second'])
    const a = await m.raw(0)
    expect(await a.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true })
    const again = await a.expect('publish', 5000)
    expect([String(again.payload), again.dup, again.messageId]).toEqual(['first', true, first.messageId])
  })

  it('[MQTT-4.8.2-4] a member that PUBRECed a shared QoS 2 message gets the PUBREL when it reconnects, not the message again (nor does another member)', async () => {
    const { id, first, toB } = await memberLeaves(2, 0, 60)
    expect(toB).toEqual(['second'])
    const a = await m.raw(0)
    expect(await a.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true })
    const rel = await a.next(5000)
    expect([rel.cmd, rel.messageId]).toEqual(['pubrel', first.messageId])
    a.send({ cmd: 'pubcomp', messageId: first.messageId })
    expect(publishes(await a.quiet(300))).toEqual([])
  })
})
