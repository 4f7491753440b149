/** MQTT over WebSocket at /mqtt. */
import { expect, it } from 'vitest'
import { collect, connect, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

it('a WebSocket client at /mqtt round-trips with a TCP client', async () => {
  const ws = await connect(`ws://127.0.0.1:${t.node.ports.ws}/mqtt`)
  const got = collect(ws)
  await ws.subscribeAsync('ws/t', { qos: 1 })
  const tcp = await connect(`mqtt://127.0.0.1:${t.node.ports.mqtt}`)
  await tcp.publishAsync('ws/t', 'over ws', { qos: 1 })
  await waitFor(() => got.length === 1, 5000, 'ws delivery')
  expect(got[0]!.payload).toBe('over ws')

  const tcpGot = collect(tcp)
  await tcp.subscribeAsync('tcp/t', { qos: 1 })
  await ws.publishAsync('tcp/t', 'from ws', { qos: 1 })
  await waitFor(() => tcpGot.length === 1, 5000, 'tcp delivery')
})

it('a WebSocket upgrade on another path is refused', async () => {
  await expect(connect(`ws://127.0.0.1:${t.node.ports.ws}/other`, { connectTimeout: 2000 })).rejects.toThrow()
})
