/**
 * SIGTERM on a `culex start` process: every MQTT 5 client is told why before its connection
 * closes, DISCONNECT 0x8B Server shutting down (MQTT 5.0 §3.14.2.1), over WebSocket as over TCP;
 * MQTT 3.1.1 clients (no server DISCONNECT in 3.1.1) just see the close. And a server DISCONNECT
 * over WebSocket outside a shutdown (0x8E takeover) reaches the client whole (listeners/ws.ts).
 */
import type { IDisconnectPacket, MqttClient } from 'mqtt'
import { afterEach, expect, it } from 'vitest'
import { cliReady, closeClients, connect, runCli, startTestNode, type CliRun } from '../helpers/node.js'

let run: CliRun | undefined
afterEach(async () => {
  await closeClients()
  if (run?.child.exitCode === null) run.child.kill('SIGKILL')
})

/** what `client` was told when its connection closed: the DISCONNECT reason code, or 'closed' without one */
const ending = (client: MqttClient): Promise<number | 'closed'> =>
  new Promise((resolve) => {
    client.once('disconnect', (p: IDisconnectPacket) => resolve(p.reasonCode ?? 0))
    client.once('close', () => resolve('closed'))
  })

it('[MQTT-3.14.0-1] SIGTERM: v5 clients over TCP and WebSocket get DISCONNECT 0x8B before the close; 3.1.1 clients see the close', async () => {
  run = runCli(['start', '--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--drain-ms', '0', '--grace-period-ms', '5000'])
  const ports = await cliReady(run)
  const tcp = `mqtt://127.0.0.1:${ports.mqtt}`
  const ws = `ws://127.0.0.1:${ports.ws}/mqtt`
  const clients = {
    v5tcp: await connect(tcp, { protocolVersion: 5, clientId: 'stop-v5-tcp' }),
    v5ws: await connect(ws, { protocolVersion: 5, clientId: 'stop-v5-ws' }),
    v4tcp: await connect(tcp, { clientId: 'stop-v4-tcp' }),
    v4ws: await connect(ws, { clientId: 'stop-v4-ws' }),
  }
  const seen = Object.fromEntries(Object.entries(clients).map(([k, c]) => [k, ending(c)]))
  run.child.kill('SIGTERM')
  expect((await run.exit).code).toBe(0)
  const got: Record<string, number | 'closed'> = {}
  for (const [k, p] of Object.entries(seen)) got[k] = await p
  expect(got).toEqual({ v5tcp: 0x8b, v5ws: 0x8b, v4tcp: 'closed', v4ws: 'closed' })
})

it('[MQTT-3.14.0-1] a v5 WebSocket client whose session is taken over gets DISCONNECT 0x8E before the close', async () => {
  const node = await startTestNode()
  try {
    const ws = `ws://127.0.0.1:${node.ports.ws}/mqtt`
    const first = await connect(ws, { protocolVersion: 5, clientId: 'ws-taken' })
    const seen = ending(first)
    await connect(ws, { protocolVersion: 5, clientId: 'ws-taken' })
    expect(await seen).toBe(0x8e)
  } finally {
    await closeClients()
    await node.close({ drain: false })
  }
})
