/** Broker CPU per delivery: /proc/PID/stat parsing, what counts as the broker, and the division. */
import { describe, expect, it } from 'vitest'
import { cpuPerDelivery, parseStatTicks, roleOf, sampleCpu, type CpuSample } from '../src/broker-cpu.js'

// a real line's shape (proc(5)): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
const stat = (comm: string, utime: number, stime: number): string =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1200 0 3 0 ${utime} ${stime} 7 9 20 0 11 0 123456 1024000 2500 18446744073709551615`

describe('parseStatTicks', () => {
  it('adds utime and stime (fields 14 and 15)', () => {
    expect(parseStatTicks(stat('mosquitto', 150, 37))).toBe(187)
  })

  it('counts fields from the last parenthesis: a program name with spaces and parentheses', () => {
    expect(parseStatTicks(stat('node (x) y', 5, 6))).toBe(11)
  })

  it('is null for a line that is not a stat line', () => {
    expect(parseStatTicks('')).toBeNull()
    expect(parseStatTicks('4242 (node) S 1 2')).toBeNull()
  })

  it('reads this process: its ticks grow while it computes', () => {
    const me = (): number => sampleCpu([{ name: 'me', pid: process.pid }]).find((s) => s.pid === process.pid)?.ticks ?? -1
    const t0 = me()
    expect(t0).toBeGreaterThanOrEqual(0)
    // compute until the kernel has counted a tick more (10 ms of CPU), at most 5 s on a busy machine
    const until = Date.now() + 5000
    let x = 0
    // at least one round: a tick counted between the first two reads left x at 0 (a flake under load)
    do for (let i = 0; i < 1e5; i++) x += Math.sqrt(i)
    while (me() === t0 && Date.now() < until)
    expect(x).toBeGreaterThan(0)
    expect(me()).toBeGreaterThan(t0)
  })
})

describe('roleOf', () => {
  it('tells the broker from the processes counted apart', () => {
    expect(roleOf('mosquitto', ['mosquitto', '-c', 'x.conf'])).toBe('broker')
    expect(roleOf('node', ['/usr/bin/node', '/x/cli.js', 'start', '--node-id', 'a'])).toBe('broker')
    expect(roleOf('redis-server', ['redis-server *:6379'])).toBe('redis')
    expect(roleOf('redis-sentinel', ['redis-sentinel'])).toBe('redis')
    expect(roleOf('haproxy', ['haproxy', '-db', '-f', 'h.cfg'])).toBe('haproxy')
    expect(roleOf('node', ['/usr/bin/node', '/x/cli.js', 'cluster', 'up', '--nodes', '3'])).toBe('other')
  })
})

describe('cpuPerDelivery', () => {
  const s = (pid: number, role: CpuSample['role'], ticks: number): CpuSample => ({ name: `p${pid}`, role, pid, ticks })

  it('divides the broker processes\' CPU over the window by the deliveries, and reports helpers apart', () => {
    const before = [s(1, 'broker', 100), s(2, 'broker', 50), s(3, 'redis', 10), s(4, 'haproxy', 0), s(5, 'other', 7)]
    const after = [s(1, 'broker', 400), s(2, 'broker', 150), s(3, 'redis', 30), s(4, 'haproxy', 50), s(5, 'other', 8)]
    const r = cpuPerDelivery(before, after, 5, 200_000)
    // 400 ticks = 4000 ms of broker CPU over 5 s = 80% of a core; 4 s / 200,000 deliveries = 20 µs each
    expect(r.broker_cpu_ms).toBe(4000)
    expect(r.broker_cpu_percent).toBe(80)
    expect(r.broker_us_per_delivery).toBe(20)
    expect(r.redis_us_per_delivery).toBe(1)
    expect(r.haproxy_us_per_delivery).toBe(2.5)
    expect(r.processes.map((p) => [p.process, p.role, p.cpu_ms])).toEqual([
      ['p1', 'broker', 3000],
      ['p2', 'broker', 1000],
      ['p3', 'redis', 200],
      ['p4', 'haproxy', 500],
      ['p5', 'other', 10],
    ])
  })

  it('scales the CPU to the window the deliveries were counted in when the samples were taken over a longer one', () => {
    // sampled over 5.1 s (a late timer), deliveries counted over 5 s: 4000 ms x 5 / 5.1 over 200,000
    const r = cpuPerDelivery([s(1, 'broker', 0)], [s(1, 'broker', 400)], 5.1, 200_000, 5)
    expect(r.broker_cpu_ms).toBe(4000)
    expect(r.broker_us_per_delivery).toBe(19.61)
  })

  it('leaves out a process not there at both ends, and has no per-delivery figure for no deliveries', () => {
    const r = cpuPerDelivery([s(1, 'broker', 0)], [s(1, 'broker', 10), s(9, 'broker', 500)], 1, 0)
    expect(r.broker_cpu_ms).toBe(100)
    expect(r.broker_us_per_delivery).toBeNull()
    expect(r.redis_us_per_delivery).toBeNull()
    expect(r.haproxy_us_per_delivery).toBeNull()
  })
})
