/**
 * connections: ramp to N concurrent idle connections, hold them for the
 * duration, report connects per second, failures, connections the broker
 * dropped, and the broker's resident memory per connection when its PID or
 * /metrics URL is known.
 */
import { readFileSync } from 'node:fs'
import { BrokerCpuMeter, cpuRoots } from '../broker-cpu.js'
import { sleep } from '../engine/limit.js'
import type { ConnPlan, RampResult } from '../engine/plan.js'
import { heapAfterGc, type HeapReading } from '../heap.js'
import { mergeHistograms, summarize } from '../histogram.js'
import { readBrokerRss, type RssReading } from '../memory.js'
import type { ScenarioConfig } from '../options.js'
import { fmtInt, Progress } from '../progress.js'
import type { ConnectionResults, ScenarioReport } from '../report/types.js'
import { GeneratorMeter } from '../selfcheck.js'
import { VERSION } from '../version.js'
import { createEngines, terminateAll } from '../workers.js'
import { hex, newRunId, reportConfig, round } from './common.js'

const SETTLE_MS = 1000

/** Size of the kernel's ephemeral port range (what one source address can open to one destination). */
export function ephemeralPorts(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (lo !== undefined && hi !== undefined && hi > lo) return hi - lo + 1
  } catch {
    // not Linux: assume the IANA range
  }
  return 16384
}

/** Loopback source addresses needed: at least `asked`, and enough that none runs out of ephemeral ports. */
export function sourceAddressCount(connections: number, asked: number, ports = ephemeralPorts()): number {
  const budget = Math.max(1000, ports - 2048)
  return Math.max(1, asked, Math.ceil(connections / budget))
}

async function safeRss(cfg: ScenarioConfig, warnings: string[]): Promise<RssReading | null> {
  try {
    return await readBrokerRss(cfg.brokerPids, cfg.metricsUrls)
  } catch (e) {
    warnings.push(`broker memory not read: ${(e as Error).message}`)
    return null
  }
}

async function safeHeap(cfg: ScenarioConfig, warnings: string[]): Promise<HeapReading | null> {
  if (!cfg.heapGcDir) return null
  try {
    return await heapAfterGc(cfg.heapGcDir)
  } catch (e) {
    warnings.push(`broker heap not read: ${(e as Error).message}`)
    return null
  }
}

/** growth per connection; null when unknown or when it did not grow (a GC returned memory: the figure would mean nothing) */
export function perConnection(before: number | null | undefined, after: number | null | undefined, connected: number): number | null {
  if (before === null || before === undefined || after === null || after === undefined || connected <= 0) return null
  return after > before ? Math.round((after - before) / connected) : null
}

/**
 * The warm-up: `cfg.connectWarmup` connections opened (as the ramp does) and closed again, not
 * measured, so that the ramp measures a broker whose connect path is warm (JIT-compiled), as the
 * message scenarios measure after their warm-up seconds. A fresh broker's first thousand
 * connections cost it ~3x the CPU of later ones (docs/performance.md). Every target alike.
 */
async function warmUp(cfg: ScenarioConfig, handles: ReturnType<typeof createEngines>, plan: (w: number) => ConnPlan, progress: Progress, tag: string): Promise<{ failed: number }> {
  if (cfg.connectWarmup <= 0) return { failed: 0 }
  progress.update(`[${tag}] warm-up: ${fmtInt(cfg.connectWarmup)} connections`)
  await Promise.all(handles.map((h, w) => h.call('connInit', plan(w))))
  const ramps = await Promise.all(handles.map((h) => h.call('ramp')))
  await Promise.all(handles.map((h) => h.call('connClose')))
  // let the broker finish the closes before the measured ramp (and its RSS reading)
  await sleep(SETTLE_MS)
  return { failed: ramps.reduce((a, r) => a + r.failed, 0) }
}

export async function runConnections(cfg: ScenarioConfig): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString()
  const urls = [...new Set([...cfg.pubUrls, ...cfg.subUrls])]
  const engines = Math.max(1, Math.min(cfg.workers, cfg.connections))
  const handles = createEngines(engines, cfg.freshEngine)
  const progress = new Progress(cfg.progress)
  const tag = `${cfg.label ? `${cfg.label} ` : ''}connections`
  const warnings: string[] = []
  // the warm-up's closed connections hold their ports a while (TIME_WAIT)
  const addresses = sourceAddressCount(cfg.connections + cfg.connectWarmup, cfg.sourceAddresses)
  const prefix = `cb${hex(newRunId())}c`
  const planFor = (count: number, clientPrefix: string) => (w: number): ConnPlan => ({
    urls,
    offset: w,
    stride: engines,
    count: Math.floor(count / engines) + (w < count % engines ? 1 : 0),
    clientPrefix,
    keepaliveS: cfg.keepaliveS,
    protocol: cfg.protocol,
    concurrency: Math.max(1, Math.ceil(cfg.connectConcurrency / engines)),
    connectTimeoutMs: 10_000,
    sourceAddresses: addresses,
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(cfg.ca ? { ca: cfg.ca } : {}),
    ...(cfg.insecure ? { insecure: true } : {}),
  })
  try {
    // RSS before the warm-up: a broker keeps (and reuses) the memory the warm-up's connections freed,
    // so measured from after it, N connections seem to cost nearly nothing (Mosquitto: 12 B)
    const fresh = await safeRss(cfg, warnings)
    const warm = await warmUp(cfg, handles, planFor(cfg.connectWarmup, `${prefix}w`), progress, tag)
    if (warm.failed > 0) warnings.push(`${warm.failed} of ${cfg.connectWarmup} warm-up connections failed`)
    const plan = planFor(cfg.connections, prefix)
    await Promise.all(handles.map((h, w) => h.call('connInit', plan(w))))
    const meter = new GeneratorMeter(handles)
    const brokerCpu = new BrokerCpuMeter(cpuRoots(cfg.brokerProcesses, cfg.brokerPids))
    meter.begin()
    brokerCpu.begin()
    const t0 = Date.now()
    const ticker = setInterval(() => {
      progress.update(`[${tag}] ramping to ${fmtInt(cfg.connections)}: ${((Date.now() - t0) / 1000).toFixed(1)}s`)
    }, 500)
    let ramps: RampResult[]
    try {
      ramps = await Promise.all(handles.map((h) => h.call('ramp')))
    } finally {
      clearInterval(ticker)
    }
    const rampS = (Date.now() - t0) / 1000
    brokerCpu.end()
    const generator = meter.end()
    const connected = ramps.reduce((a, r) => a + r.connected, 0)
    const cpu = brokerCpu.result(connected)
    const failed = ramps.reduce((a, r) => a + r.failed, 0)
    progress.update(`[${tag}] ${fmtInt(connected)} connected, ${fmtInt(failed)} failed in ${rampS.toFixed(1)}s; holding`)
    await sleep(SETTLE_MS)
    const after = fresh ? await safeRss(cfg, warnings) : null
    // The heap after a full GC with the connections open, then (below) with them closed. Both are
    // read after the measured ramp, never before it: a forced full GC with no connection open lets
    // the maps of the closed ones die, V8 deoptimizes the code that depended on them ("weak
    // objects") and compiles it again during the next ramp, which cost a Culex node ~300-500 µs
    // of CPU per connect in the window (docs/performance.md, "Connect path").
    const heapWith = await safeHeap(cfg, warnings)
    const holdUntil = t0 + rampS * 1000 + Math.max(cfg.durationS * 1000, SETTLE_MS)
    await sleep(Math.max(0, holdUntil - Date.now()))
    const alive = (await Promise.all(handles.map((h) => h.call('alive')))).reduce((a, b) => a + b, 0)
    let heapWithout: HeapReading | null = null
    if (heapWith) {
      // the ramp's connections closed and collected, as the warm-up's are before the ramp
      await Promise.all(handles.map((h) => h.call('connClose')))
      await sleep(SETTLE_MS)
      heapWithout = await safeHeap(cfg, warnings)
    }

    const errors: Record<string, number> = {}
    for (const r of ramps) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
    const lat = summarize(mergeHistograms(ramps.map((r) => r.histogram)))
    const perConn = perConnection(fresh?.bytes, after?.bytes, connected)
    if (fresh && after && connected > 0 && perConn === null) warnings.push('broker RSS did not grow over the ramp (garbage collection?): no per-connection memory figure')
    const heapPerConn = perConnection(heapWithout?.bytes, heapWith?.bytes, connected)
    const results: ConnectionResults = {
      kind: 'connections',
      connections_requested: cfg.connections,
      warmup_connections: cfg.connectWarmup,
      connected,
      failures: failed,
      failure_reasons: errors,
      ramp_s: round(rampS, 3),
      connects_per_s: round(connected / Math.max(rampS, 0.001)),
      connect_p50_ms: lat.p50_ms,
      connect_p99_ms: lat.p99_ms,
      dropped_during_hold: connected - alive,
      source_addresses: [...new Set(ramps.flatMap((r) => r.sourceAddresses))].sort(),
      rss_before_bytes: fresh?.bytes ?? null,
      rss_after_bytes: after?.bytes ?? null,
      rss_per_connection_bytes: perConn,
      rss_source: fresh?.source ?? null,
      ...(heapWith
        ? { heap_before_bytes: heapWithout?.bytes ?? null, heap_after_bytes: heapWith.bytes, heap_per_connection_bytes: heapPerConn, heap_nodes: heapWith.nodes }
        : {}),
      ...(cpu ? { broker_cpu: cpu } : {}),
    }
    if (generator.note) warnings.push(generator.note)
    const reasons: string[] = []
    if (failed > 0) reasons.push(`${failed} of ${cfg.connections} connections failed`)
    if (results.dropped_during_hold > 0) reasons.push(`${results.dropped_during_hold} idle connection(s) dropped by the broker`)
    return {
      tool: 'culex-bench',
      version: VERSION,
      scenario: 'connections',
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      config: reportConfig({ ...cfg, pubUrls: urls, subUrls: [] }, 0, 0),
      results,
      valid: reasons.length === 0,
      invalid_reason: reasons.length ? reasons.join('; ') : null,
      allowed: { loss: false, duplicates: false },
      warnings,
      generator,
    }
  } finally {
    progress.done()
    await terminateAll(handles)
  }
}
