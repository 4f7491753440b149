/**
 * A QoS 2 message is in flight until its PUBCOMP [MQTT-4.9.0-2]: the PUBRELs a session's replay
 * resends at CONNECT take their place in the client's Receive Maximum window (limits/delivery.ts
 * counts them as written), so no new PUBLISH goes out before a PUBCOMP frees a slot. One node, raw
 * MQTT 5, with each session store: a real redis-server (cluster/outgoing.ts, which keeps a PUBREL in
 * place of its PUBLISH) and memory (aedes-persistence with seam P8, seam/memory-pubrel.ts, which
 * keeps each message's stored PUBREL apart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, startRedis, waitFor } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { Raw, destroyAll } from '../conformance/raw.js'

describe.each(['redis', 'memory'])('one node (%s): PUBRELs resent by the replay count in the Receive Maximum window', (store) => {
  let node: CulexNode
  beforeAll(async () => {
    const redis = store === 'redis' ? await startRedis() : undefined
    node = await startTestNode({ ...(redis ? { redis_url: redis.url } : {}), node_id: 'rm-qos2', allow_anonymous: true })
  })
  afterAll(async () => {
    destroyAll()
    await node?.close()
    await killAll()
  })

  it('[MQTT-4.9.0-2] [MQTT-3.3.4-9] QoS 2 messages whose PUBRELs the replay resends count until their PUBCOMP: Receive Maximum 2, two PUBRELs resent, no PUBLISH before a PUBCOMP, then one per PUBCOMP', async () => {
    const id = 'rm-flow-q2'
    const port = node.ports.mqtt
    const sub = await Raw.open(port, 5)
    await sub.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await sub.subscribe(`q/${id}`, 2)
    await sub.disconnect()
    const pub = await Raw.open(port, 5)
    await pub.connect({ clientId: `${id}-pub` })
    for (let i = 0; i < 5; i++) await pub.publish(`q/${id}`, String(i), 2, false, i + 1)
    const connect = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 2 } }
    // the first connection: two PUBLISHes, PUBREC for both, their PUBRELs come; gone without PUBCOMP
    const c1 = await Raw.open(port, 5)
    await c1.connect(connect)
    await waitFor(() => c1.packets.filter((p) => p.cmd === 'publish').length === 2, 5000, 'two PUBLISHes')
    for (const p of c1.packets.filter((x) => x.cmd === 'publish')) c1.send({ cmd: 'pubrec', messageId: p.messageId })
    await waitFor(() => c1.packets.filter((p) => p.cmd === 'pubrel').length === 2, 5000, 'two PUBRELs')
    c1.destroy()
    await c1.closedBy()
    // the next: the two PUBRELs again, and nothing more while they are in flight
    const c2 = await Raw.open(port, 5)
    await c2.connect(connect)
    await waitFor(() => c2.packets.filter((p) => p.cmd === 'pubrel').length === 2, 5000, 'the two PUBRELs resent')
    c2.send({ cmd: 'pingreq' })
    await waitFor(() => c2.packets.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
    expect(c2.packets.filter((p) => p.cmd === 'publish')).toEqual([])
    const [first, second] = c2.packets.filter((p) => p.cmd === 'pubrel')
    c2.send({ cmd: 'pubcomp', messageId: first!.messageId })
    await waitFor(() => c2.packets.some((p) => p.cmd === 'publish'), 5000, 'a PUBLISH after the PUBCOMP')
    c2.send({ cmd: 'pingreq' })
    await waitFor(() => c2.packets.filter((p) => p.cmd === 'pingresp').length === 2, 5000, 'PINGRESP')
    expect(c2.packets.filter((p) => p.cmd === 'publish').map((p) => String(p.payload))).toEqual(['2'])
    c2.send({ cmd: 'pubcomp', messageId: second!.messageId })
    await waitFor(() => c2.packets.filter((p) => p.cmd === 'publish').length === 2, 5000, 'one more')
  }, 30_000)

})
