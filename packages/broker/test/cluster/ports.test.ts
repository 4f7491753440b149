/**
 * Port picks of `cluster up` and of the tests (src/local-cluster/procs.ts, test/helpers/ports.ts):
 * a port picked but not bound yet is never picked again by the same process, a port reserved for
 * HAProxy never goes to Redis or Sentinel, and the tests pick in a band of their own, so the
 * supervisor (another process) cannot pick a port a test handed it or holds for a restart
 * (chaos/redis-failover's port clash).
 */
import { describe, expect, it } from 'vitest'
import { SUPERVISOR_PORTS, freePort, reservePorts } from '../../src/local-cluster/procs.js'
import { freePort as testPort } from '../helpers/ports.js'

describe('free port picks', () => {
  it('never the same port twice in one process, never a reserved one', async () => {
    // a band of 6 ports in the supervisor's range, 2 of them reserved (HAProxy's, say)
    const band = { from: SUPERVISOR_PORTS.from + 5000 + Math.floor(Math.random() * 900), size: 6 }
    const reserved = [band.from + 1, band.from + 4]
    reservePorts(reserved)
    const picked: number[] = []
    for (let i = 0; i < 4; i++) picked.push(await freePort('127.0.0.1', band))
    expect(new Set(picked).size).toBe(4)
    for (const p of picked) {
      expect(p).toBeGreaterThanOrEqual(band.from)
      expect(p).toBeLessThan(band.from + band.size)
      expect(reserved).not.toContain(p)
    }
  })

  it('the tests pick below the supervisor band, each port once', async () => {
    const picked: number[] = []
    for (let i = 0; i < 30; i++) picked.push(await testPort())
    expect(new Set(picked).size).toBe(30)
    for (const p of picked) {
      expect(p).toBeGreaterThanOrEqual(20000)
      expect(p).toBeLessThan(SUPERVISOR_PORTS.from)
    }
    // the supervisor's own picks stay in its band
    const sup = await freePort()
    expect(sup).toBeGreaterThanOrEqual(SUPERVISOR_PORTS.from)
    expect(sup).toBeLessThan(SUPERVISOR_PORTS.from + SUPERVISOR_PORTS.size)
  })
})
