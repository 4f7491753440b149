/**
 * Free loopback ports for tests that must name a port before a process binds it (HAProxy,
 * redis-server). Port 0 picks from the kernel's ephemeral range (32768-60999), the same range
 * every outgoing connection and every `--mqtt-port 0` node takes its ports from, so a port
 * probed there can be gone before the process binds it when test files run in parallel. These
 * come from below that range, at random, and are checked free.
 */
import { createServer } from 'node:net'

const LOW = 20000
const HIGH = 32000

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

const handedOut = new Set<number>()

export async function freePort(): Promise<number> {
  for (;;) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW))
    if (handedOut.has(port)) continue
    if (await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
}
