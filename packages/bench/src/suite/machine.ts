/** The machine a run happened on. */
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import type { MachineInfo } from '../report/types.js'

export function machineInfo(): MachineInfo {
  let model = os.cpus()[0]?.model ?? 'unknown'
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8', timeout: 5000 })
  const m = /^Model name:\s*(.+)$/m.exec(lscpu.stdout ?? '')
  if (m?.[1]) model = m[1].trim()
  return {
    nproc: os.availableParallelism(),
    cpu_model: model,
    ram_bytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  }
}
