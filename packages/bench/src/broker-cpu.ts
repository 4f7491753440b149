/**
 * Broker CPU per delivery: user + system CPU time of every broker process (and
 * every process it started: `culex cluster up`'s nodes, Redis, HAProxy) over
 * exactly the measured window, read from /proc/PID/stat, divided by the
 * deliveries counted in that window. Unlike the delivery rate it does not
 * depend on whether the load generator kept up: it is what one delivery costs
 * the broker. Broker processes (Mosquitto, Culex nodes) are summed; Redis,
 * HAProxy and anything else are reported on their own.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { WatchedProcess } from './options.js'
import type { BrokerCpu, CpuRole } from './report/types.js'

/** USER_HZ: the unit of utime/stime in /proc/PID/stat, 100 on every Linux (the proc(5) ABI) */
export const TICKS_PER_S = 100

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/** pid and every descendant, from /proc/PID/task/TID/children (Linux) */
export function descendants(pid: number): number[] {
  const out: number[] = []
  const walk = (p: number): void => {
    out.push(p)
    let tids: string[] = []
    try {
      tids = readdirSync(`/proc/${p}/task`)
    } catch {
      return
    }
    for (const tid of tids) {
      const kids = read(`/proc/${p}/task/${tid}/children`)
      for (const k of kids?.trim().split(/\s+/) ?? []) if (k) walk(Number(k))
    }
  }
  walk(pid)
  return out
}

/**
 * utime + stime (fields 14 and 15, in ticks) of a /proc/PID/stat line, null if it is not one.
 * The command name (field 2) is in parentheses and may hold spaces and parentheses: fields are
 * counted from the last ')'.
 */
export function parseStatTicks(stat: string): number | null {
  const close = stat.lastIndexOf(')')
  if (close < 0) return null
  const f = stat.slice(close + 2).trim().split(/\s+/)
  // after the name: state(3) ppid(4) ... utime(14) stime(15), so utime is f[11]
  const u = Number(f[11])
  const s = Number(f[12])
  return Number.isFinite(u) && Number.isFinite(s) && f.length >= 13 ? u + s : null
}

/** user + system CPU ticks of a process (all its threads), null when it is gone */
export function ticksOf(pid: number): number | null {
  const stat = read(`/proc/${pid}/stat`)
  return stat ? parseStatTicks(stat) : null
}

/** What a process is, from its program name and arguments: the broker itself, or a helper counted apart. */
export function roleOf(comm: string, argv: string[]): CpuRole {
  if (comm.startsWith('redis')) return 'redis'
  if (comm === 'haproxy') return 'haproxy'
  if (comm === 'mosquitto') return 'broker'
  // a Culex node: `node .../cli.js start ...`; `culex cluster up` is its supervisor
  if (argv.includes('start')) return 'broker'
  return 'other'
}

function describe(root: WatchedProcess, pid: number): { name: string; role: CpuRole } {
  const argv = (read(`/proc/${pid}/cmdline`) ?? '').split('\0')
  const comm = (read(`/proc/${pid}/comm`) ?? '?').trim()
  const role = roleOf(comm, argv)
  if (pid === root.pid) return { name: root.name, role: role === 'other' && !argv.includes('cluster') ? 'broker' : role }
  const i = argv.indexOf('--node-id')
  const id = i >= 0 ? argv[i + 1] : undefined
  return { name: `${root.name}: ${id ? `node ${id}` : comm} (pid ${pid})`, role }
}

export interface CpuSample {
  name: string
  role: CpuRole
  pid: number
  ticks: number
}

/** every watched process and its descendants, with their CPU ticks now */
export function sampleCpu(roots: WatchedProcess[]): CpuSample[] {
  const out: CpuSample[] = []
  for (const root of roots) {
    for (const pid of descendants(root.pid)) {
      const ticks = ticksOf(pid)
      if (ticks === null) continue
      out.push({ ...describe(root, pid), pid, ticks })
    }
  }
  return out
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * The CPU each process used between two samples and its cost per delivery. Only processes present in
 * both count (one that started or ended inside the window is left out). `deliveries` 0 gives null
 * per-delivery figures. `countedS`: the window the deliveries were counted in, when the samples were
 * taken over a slightly different one (`windowS`: a timer fires late on a busy event loop): the CPU is
 * scaled to it (a steady rate over the window).
 */
export function cpuPerDelivery(before: CpuSample[], after: CpuSample[], windowS: number, deliveries: number, countedS = windowS): BrokerCpu {
  const processes: BrokerCpu['processes'] = []
  for (const a of after) {
    const b = before.find((x) => x.pid === a.pid)
    if (!b) continue
    processes.push({ process: a.name, role: a.role, cpu_ms: ((a.ticks - b.ticks) * 1000) / TICKS_PER_S })
  }
  const ms = (role: CpuRole): number => processes.filter((p) => p.role === role).reduce((s, p) => s + p.cpu_ms, 0)
  const scale = windowS > 0 ? countedS / windowS : 1
  const per = (cpuMs: number): number | null => (deliveries > 0 ? round((cpuMs * scale * 1000) / deliveries, 2) : null)
  const has = (role: CpuRole): boolean => processes.some((p) => p.role === role)
  const broker = ms('broker')
  return {
    window_s: round(windowS, 3),
    deliveries,
    processes,
    broker_cpu_ms: broker,
    broker_cpu_percent: windowS > 0 ? round(broker / (windowS * 10), 1) : 0,
    broker_us_per_delivery: per(broker),
    redis_us_per_delivery: has('redis') ? per(ms('redis')) : null,
    haproxy_us_per_delivery: has('haproxy') ? per(ms('haproxy')) : null,
  }
}

/** Samples at begin() and end() of the measured window; without processes it measures nothing. */
export class BrokerCpuMeter {
  private before: CpuSample[] = []
  private t0 = 0n
  private t1 = 0n
  private after: CpuSample[] = []

  constructor(private readonly roots: WatchedProcess[]) {}

  get active(): boolean {
    return this.roots.length > 0
  }

  begin(): void {
    if (!this.active) return
    this.before = sampleCpu(this.roots)
    this.t0 = process.hrtime.bigint()
  }

  end(): void {
    if (!this.active) return
    this.after = sampleCpu(this.roots)
    this.t1 = process.hrtime.bigint()
  }

  /** the window's figures for `deliveries` counted over `countedS` seconds (default: the sampled window); null without processes */
  result(deliveries: number, countedS?: number): BrokerCpu | null {
    if (!this.active || this.after.length === 0) return null
    const windowS = Number(this.t1 - this.t0) / 1e9
    return cpuPerDelivery(this.before, this.after, windowS, deliveries, countedS ?? windowS)
  }
}

/** the processes to measure: the suite's (with their children), else the --broker-pid PIDs */
export function cpuRoots(processes: WatchedProcess[] | undefined, pids: number[]): WatchedProcess[] {
  return processes ?? pids.map((pid) => ({ name: `pid ${pid}`, pid }))
}
