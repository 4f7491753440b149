/** Runs the same scenarios against every target, one target at a time, and gathers one report. */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { MESSAGE_SCENARIOS, type Protocol, type QoS, type ScenarioConfig, type ScenarioName } from '../options.js'
import { matrixKey, runKey } from '../report/matrix.js'
import type { ScenarioReport, SuiteReport, TargetReport } from '../report/types.js'
import { runScenario } from '../scenarios/index.js'
import { VERSION } from '../version.js'
import { SkipTarget, type StartedTarget, type SuiteContext, type TargetDef } from './brokers.js'
import { machineInfo } from './machine.js'

export interface SuiteOptions {
  targets: TargetDef[]
  scenarios: ScenarioName[]
  qos: QoS[]
  /** MQTT protocol levels: every scenario runs once per level */
  protocols: Protocol[]
  /** everything but the scenario, the URLs and the per-target broker handles */
  base: Omit<ScenarioConfig, 'scenario' | 'pubUrls' | 'subUrls' | 'brokerPids' | 'metricsUrls' | 'heapGcDir' | 'qos' | 'protocol' | 'label'>
  /** fanin publishers (base.publishers is the fanout publisher count) */
  faninPublishers: number
  /** the flood scenario's own QoS levels and counts */
  flood: { qos: QoS[]; publishers: number; subscribers: number; drainTimeoutS: number }
  /** the shared scenario's publishers (groups and members are in base) */
  sharedPublishers: number
  ctx: Omit<SuiteContext, 'tmpRoot'>
  log: (line: string) => void
}

const cpu = (us: number | null | undefined, unit: string): string => (us === null || us === undefined ? '' : `, broker ${us} µs/${unit}`)

const steal = (r: ScenarioReport): string => (r.generator.vm_steal_pct ? `, vm steal ${r.generator.vm_steal_pct}%` : '')

function summaryLine(t: string, r: ScenarioReport): string {
  const res = r.results
  const mark = r.valid ? '' : `  INVALID: ${r.invalid_reason}`
  if (res.kind === 'connections') {
    return `${t} connections: ${res.connected}/${res.connections_requested} at ${res.connects_per_s} conn/s${cpu(res.broker_cpu?.broker_us_per_delivery, 'connect')}${mark}`
  }
  return (
    `${t} ${runKey(r)}: ${res.deliveries_per_s} msg/s${cpu(res.broker_cpu?.broker_us_per_delivery, 'msg')}, p99 ${res.p99_ms} ms, ` +
    (res.flood ? `peak rss ${Math.round((res.flood.peak_rss_max_bytes ?? 0) / 2 ** 20)} MiB, busy after ${res.flood.busy_after_stop_s} s, ` : '') +
    `lost ${res.lost} dup ${res.duplicated} ooo ${res.out_of_order}, generator cpu ${r.generator.cpu_percent}% (busiest thread ${Math.round(Math.max(0, ...r.generator.event_loop_utilization) * 100)}%)${steal(r)}${mark}`
  )
}

async function runTarget(def: TargetDef, o: SuiteOptions, tmpRoot: string): Promise<TargetReport> {
  const rep: TargetReport = {
    name: def.name,
    description: def.description,
    status: 'ok',
    reason: null,
    pub_urls: [],
    sub_urls: [],
    runs: [],
    errors: [],
  }
  // each protocol on a target started afresh: a node that has served one protocol's runs is slower
  // for the next run on it, whichever protocol that is (README "MQTT 5"), so v5 and 3.1.1 are compared
  // each from a fresh start, not v5 always second
  for (const protocol of o.protocols) {
    if (!(await runProtocol(def, o, tmpRoot, protocol, rep))) break
  }
  return rep
}

/** starts `def`, runs every scenario at `protocol` into `rep`, stops it; false if it did not start */
async function runProtocol(def: TargetDef, o: SuiteOptions, tmpRoot: string, protocol: Protocol, rep: TargetReport): Promise<boolean> {
  let started: StartedTarget
  o.log(`${def.name}: starting`)
  try {
    started = await def.start({ ...o.ctx, tmpRoot })
  } catch (e) {
    rep.status = e instanceof SkipTarget ? 'skipped' : 'failed'
    rep.reason = (e as Error).message
    o.log(`${def.name}: ${rep.status}: ${rep.reason}`)
    return false
  }
  rep.pub_urls = started.pubUrls
  rep.sub_urls = started.subUrls
  try {
    for (const scenario of o.scenarios) {
      const qosList: Array<QoS | null> = scenario === 'flood' ? o.flood.qos : MESSAGE_SCENARIOS.includes(scenario) ? o.qos : [null]
      for (const qos of qosList) {
        const cfg: ScenarioConfig = {
          ...o.base,
          scenario,
          qos: qos ?? 0,
          protocol,
          label: def.name,
          publishers: scenario === 'fanin' ? o.faninPublishers : scenario === 'flood' ? o.flood.publishers : scenario === 'shared' ? o.sharedPublishers : o.base.publishers,
          subscribers: scenario === 'flood' ? o.flood.subscribers : o.base.subscribers,
          drainTimeoutS: scenario === 'flood' ? Math.max(o.base.drainTimeoutS, o.flood.drainTimeoutS) : o.base.drainTimeoutS,
          brokerProcesses: started.processes,
          ...(started.gcDir ? { heapGcDir: started.gcDir } : {}),
          pubUrls: started.pubUrls,
          subUrls: started.subUrls,
          brokerPids: started.brokerPids,
          metricsUrls: started.metricsUrls,
        }
        try {
          const r = await runScenario(cfg)
          rep.runs.push(r)
          o.log(summaryLine(def.name, r))
        } catch (e) {
          rep.errors.push({ scenario, qos, ...(protocol === 5 ? { protocol } : {}), error: (e as Error).message })
          o.log(`${def.name} ${matrixKey(scenario, qos, protocol)}: error: ${(e as Error).message}`)
        }
      }
    }
  } finally {
    await started.stop()
    o.log(`${def.name}: stopped`)
  }
  return true
}

export async function runSuite(o: SuiteOptions): Promise<SuiteReport> {
  const startedAt = new Date().toISOString()
  const loadStart = os.loadavg()
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'culex-bench-'))
  const targets: TargetReport[] = []
  try {
    for (const def of o.targets) targets.push(await runTarget(def, o, tmpRoot))
  } finally {
    rmSync(tmpRoot, { recursive: true, force: true })
  }
  return {
    tool: 'culex-bench',
    version: VERSION,
    kind: 'suite',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine: machineInfo(),
    load_average: { start: loadStart.map((x) => Math.round(x * 100) / 100), end: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    config: {
      scenarios: o.scenarios,
      qos: o.qos,
      flood_qos: o.flood.qos,
      protocols: o.protocols,
      duration_s: o.base.durationS,
      warmup_s: o.base.warmupS,
      size_bytes: o.base.size,
      workers: o.base.workers,
      baseline: o.targets[0]?.name ?? 'none',
    },
    targets,
  }
}
