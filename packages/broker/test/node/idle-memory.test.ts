/**
 * What an idle connection holds (issue 15: <= 4 KiB per idle connection; docs/performance.md
 * "What an idle connection holds"): raw MQTT 3.1.1 connections from a child process
 * (scripts/idle-memory.mjs --child: the client side is not counted), each CONNECTed (keepalive
 * 60 s) and idle. The node's V8 heap after a full GC grows by less than 3400 B per connection
 * (~3.1-3.2 KB now at N = 1000; ~3.55 KB before seam/keepalive-sweep.ts and the lazy parser
 * Packet, and 6.4-6.7 KB before seam/idle-connection.ts), and by less than 4096 B with one QoS 1
 * subscription of a topic of its own each (~3.7-3.95 KB now; over 4.4 KB before the no-subscribers
 * index asked Aedes' trie, ~8 KB before idle-connection.ts). 1000 connections, not 300: the
 * fixed costs of a round (compiled code) moved the figure by +-600 B at 300.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { SWEEP_MS } from '../../src/seam/index.js'
import { startTestNode, waitFor } from '../helpers/node.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const script = fileURLToPath(new URL('../../../../scripts/idle-memory.mjs', import.meta.url))
const N = 1000

let node: CulexNode
beforeAll(async () => {
  node = await startTestNode({ max_connects_per_s_per_ip: 0 })
})
afterAll(() => node?.close({ drain: false }))

const connected = (): number => node.broker.connectedClients

/** N idle connections (with a subscription each if `sub`), up once every CONNACK (SUBACK) arrived and the node counts them */
async function open(sub: boolean): Promise<ChildProcess> {
  const child = fork(script, ['--child', String(node.ports.mqtt), String(N), '4', sub ? 'sub' : '', ''])
  await once(child, 'message')
  await waitFor(() => connected() === N, 10_000, `${N} clients connected`)
  return child
}
async function close(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit')
  child.send('bye')
  await exited
  await waitFor(() => connected() === 0, 10_000, 'every client gone')
  // the keepalive sweep lets a closed client go at its next pass (seam/keepalive-sweep.ts)
  await new Promise((r) => setTimeout(r, SWEEP_MS + 100))
}
async function heap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 20))
  }
  return process.memoryUsage().heapUsed
}
/** heap per connection; a first round warms the connect path up (lazy state, compiled code) */
async function perConnection(sub: boolean): Promise<number> {
  await close(await open(sub))
  const before = await heap()
  const child = await open(sub)
  const after = await heap()
  await close(child)
  return (after - before) / N
}

it(`an idle MQTT 3.1.1 connection holds under 3400 B of heap (${N} connections)`, async () => {
  const per = await perConnection(false)
  expect(per).toBeGreaterThan(1000) // the measurement saw the connections at all
  expect(per, `${per.toFixed(0)} B per connection`).toBeLessThan(3400)
})

it(`an idle connection with one subscription holds under 4096 B of heap (${N} connections)`, async () => {
  const per = await perConnection(true)
  expect(per, `${per.toFixed(0)} B per connection`).toBeLessThan(4096)
})
