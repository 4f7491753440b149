/** Mosquitto's own command-line clients use a Culex node. */
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startTestNode, waitFor } from '../helpers/node.js'

const run = promisify(execFile)
let node: CulexNode
beforeAll(async () => {
  node = await startTestNode()
})
afterAll(() => node.close())

it('mosquitto_sub receives what mosquitto_pub sends through Culex, QoS 1', async () => {
  const port = String(node.ports.mqtt)
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-t', 'mosq/#', '-q', '1', '-C', '3', '-v', '-W', '10'])
  let out = ''
  sub.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve))
  const clients = (node.broker as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> }).clients
  await waitFor(() => Object.values(clients).some((c) => 'mosq/#' in c.subscriptions), 5000, 'mosquitto_sub subscribed')
  for (let i = 1; i <= 3; i++) await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-t', `mosq/${i}`, '-m', `m${i}`, '-q', '1'])
  expect(await exited).toBe(0)
  expect(out.trim().split('\n')).toEqual(['mosq/1 m1', 'mosq/2 m2', 'mosq/3 m3'])
})
