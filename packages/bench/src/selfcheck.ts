/** Generator self-check: how busy the load generator itself was while it measured. */
import os from 'node:os'
import type { EventLoopUtilization } from 'node:perf_hooks'
import type { EngineHandle } from './workers.js'
import type { GeneratorCheck } from './report/types.js'

const SATURATED_ELU = 0.95

export class GeneratorMeter {
  private cpu0: NodeJS.CpuUsage = process.cpuUsage()
  private t0 = process.hrtime.bigint()
  private elu0: EventLoopUtilization[] = []

  constructor(private readonly handles: EngineHandle[]) {}

  begin(): void {
    this.cpu0 = process.cpuUsage()
    this.t0 = process.hrtime.bigint()
    this.elu0 = this.handles.map((h) => h.elu())
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
      saturated,
      note: saturated
        ? `a generator thread was ${Math.round(busiest * 100)}% busy: the figure may be bounded by the load generator (try more --workers)`
        : null,
    }
  }
}
