/**
 * Free loopback ports for tests that must name a port before a process binds it (HAProxy,
 * redis-server): the product's own pick (src/local-cluster/procs.ts, below the kernel's
 * ephemeral range so it does not race with port-0 binds), never the same port twice in a run.
 */
import { freePort as pickFreePort } from '../../src/local-cluster/procs.js'

const handedOut = new Set<number>()

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await pickFreePort()
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}
