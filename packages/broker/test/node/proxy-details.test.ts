/**
 * The PROXY protocol gate's connection details (listeners/proxy-protocol.ts): every connection's
 * `connDetails` object has the same V8 hidden class. Built as `{ ...details, isWebsocket }`, each
 * got one of its own once V8 had seen a few (~270 B more per connection behind HAProxy, issue 15,
 * docs/performance.md "What an idle connection holds"). Real loopback sockets through the gate.
 */
import { setFlagsFromString } from 'node:v8'
import { afterEach, expect, it } from 'vitest'
import pino from 'pino'
import { createProxyProtocolGate } from '../../src/listeners/proxy-protocol.js'
import type { ConnInfo } from '../../src/listeners/tcp.js'
import { closeSocketPairs, socketPair } from '../helpers/socket-pair.js'

afterEach(() => closeSocketPairs())

setFlagsFromString('--allow-natives-syntax')
// V8's %HaveSameMap: the flag set above must come before the function is compiled
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean

it('connection details behind a PROXY v1 header share one hidden class, 40 connections', async () => {
  const gate = createProxyProtocolGate({ trustedProxies: ['127.0.0.1'], log: pino({ level: 'silent' }), timeoutMs: 5000 })
  const all: object[] = []
  for (let i = 0; i < 40; i++) {
    const [server, client] = await socketPair()
    const info: ConnInfo = {}
    const passed = new Promise<void>((resolve) => gate(server, info, resolve))
    client.write(`PROXY TCP4 10.9.0.${i} 127.0.0.1 ${20000 + i} 1883\r\n`)
    await passed
    const d = info.connDetails as { ipAddress: string }
    expect(d.ipAddress).toBe(`10.9.0.${i}`)
    all.push(d)
  }
  const differ = all.filter((d) => !sameMap(d, all[0]!)).length
  expect(differ, 'connections whose details have a hidden class of their own').toBe(0)
})
