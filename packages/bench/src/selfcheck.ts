/** Generator self-check: how busy the load generator itself was while it measured. */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import type { EventLoopUtilization } from 'node:perf_hooks'
import type { EngineHandle } from './workers.js'
import type { GeneratorCheck } from './report/types.js'

const SATURATED_ELU = 0.95

/** the machine's CPU time so far, all cores, in clock ticks: [total, steal] (/proc/stat's `cpu` line), or null */
export function cpuTimes(): [number, number] | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
    if (f.length < 8 || f.some((n) => !Number.isFinite(n))) return null
    return [f.reduce((a, b) => a + b, 0), f[7]!]
  } catch {
    return null
  }
}

/** steal between two cpuTimes() readings, % of all the time, one decimal; null if either is missing */
export function stealPercent(from: [number, number] | null, to: [number, number] | null): number | null {
  if (!from || !to || to[0] <= from[0]) return null
  return Math.round(((to[1] - from[1]) / (to[0] - from[0])) * 1000) / 10
}

export class GeneratorMeter {
  private cpu0: NodeJS.CpuUsage = process.cpuUsage()
  private t0 = process.hrtime.bigint()
  private elu0: EventLoopUtilization[] = []
  private times0: [number, number] | null = null

  constructor(private readonly handles: EngineHandle[]) {}

  begin(): void {
    this.cpu0 = process.cpuUsage()
    this.t0 = process.hrtime.bigint()
    this.elu0 = this.handles.map((h) => h.elu())
    this.times0 = cpuTimes()
  }

  end(): GeneratorCheck {
    const cpu = process.cpuUsage(this.cpu0)
    const wallUs = Math.max(1, Number(process.hrtime.bigint() - this.t0) / 1000)
    const elu = this.handles.map((h, i) => {
      const prev = this.elu0[i]
      return Math.round((prev ? h.elu(prev) : h.elu()).utilization * 1000) / 1000
    })
    const busiest = Math.max(0, ...elu)
    const saturated = busiest >= SATURATED_ELU
    return {
      threads: this.handles.length,
      cores: os.availableParallelism(),
      cpu_percent: Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 10,
      cpu_user_ms: Math.round(cpu.user / 1000),
      cpu_system_ms: Math.round(cpu.system / 1000),
      event_loop_utilization: elu,
      vm_steal_pct: stealPercent(this.times0, cpuTimes()),
      saturated,
      note: saturated
        ? `a generator thread was ${Math.round(busiest * 100)}% busy: the figure may be bounded by the load generator (try more --workers)`
        : null,
    }
  }
}
