/**
 * Free loopback ports for tests that must name a port before a process binds it (HAProxy,
 * redis-server): the product's own pick (src/local-cluster/procs.ts, below the kernel's
 * ephemeral range so it does not race with port-0 binds), never the same port twice in a run,
 * from a band apart from the one `cluster up` picks its Redis and Sentinel ports in
 * (SUPERVISOR_PORTS, 26000-31999), and apart from the other vitest workers' (VITEST_POOL_ID):
 * a port a test picked but has not bound yet (the HAProxy ports it hands to `cluster up`, a
 * Redis to restart on the same port) is picked by no other process of the run.
 */
import { freePort as pickFreePort, SUPERVISOR_PORTS, type PortBand } from '../../src/local-cluster/procs.js'

const TEST_PORTS = { from: 20000, size: SUPERVISOR_PORTS.from - 20000 }
const SLICES = 3
const slice = Math.max(0, Number(process.env.VITEST_POOL_ID ?? 1) - 1) % SLICES
const size = Math.floor(TEST_PORTS.size / SLICES)
const band: PortBand = { from: TEST_PORTS.from + slice * size, size }

export async function freePort(): Promise<number> {
  return pickFreePort('127.0.0.1', band)
}
