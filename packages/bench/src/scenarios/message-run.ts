/**
 * Runs a message scenario: connect subscribers, then publishers, prove the
 * routes with probe messages, publish through warmup + measured window, stop,
 * let in-flight deliveries drain, then settle the accounting.
 */
import { BrokerCpuMeter, cpuRoots } from '../broker-cpu.js'
import { judge, tally, type PublisherCounts, type StreamCounts } from '../accounting.js'
import type { LoadFinal, LoadPlan, LoadSnapshot } from '../engine/plan.js'
import { sleep } from '../engine/limit.js'
import { mergeHistograms, summarize } from '../histogram.js'
import type { ScenarioConfig } from '../options.js'
import { fmtInt, Progress } from '../progress.js'
import type { FloodResults, MessageResults, ScenarioReport, SharedResults } from '../report/types.js'
import { GeneratorMeter } from '../selfcheck.js'
import { roundRobin } from '../targets.js'
import { VERSION } from '../version.js'
import { createEngines, terminateAll, type EngineHandle } from '../workers.js'
import { hex, newRunId, nowNs, reportConfig, round, sleepUntil } from './common.js'
import type { Topology } from './topology.js'

/** What a scenario adds to a message run: called as the load starts, when it stops, and after the drain. */
export interface RunObserver<T> {
  begin(): Promise<void>
  loadStopped(): void
  /** every message owed has arrived, or the drain gave up */
  drained(): void
  finish(): Promise<T>
  /** the run failed: stop watching */
  abort(): void
}

const PROBE_TIMEOUT_MS = 15_000
const DRAIN_IDLE_MS = 1000
/** flood: a broker holding an overload may deliver nothing for longer while it catches up */
const FLOOD_DRAIN_IDLE_MS = 3000

export function buildPlans(cfg: ScenarioConfig, topo: Topology, runId: number, engines: number): LoadPlan[] {
  const id = hex(runId)
  const plans: LoadPlan[] = Array.from({ length: engines }, () => ({
    settings: {
      runId,
      qos: cfg.qos,
      protocol: cfg.protocol,
      size: cfg.size,
      window: cfg.window,
      keepaliveS: cfg.keepaliveS,
      connectConcurrency: cfg.connectConcurrency,
      connectTimeoutMs: 10_000,
      ratePerPub: topo.ratePerPub,
      ...(cfg.username !== undefined ? { username: cfg.username } : {}),
      ...(cfg.password !== undefined ? { password: cfg.password } : {}),
      ...(cfg.ca ? { ca: cfg.ca } : {}),
      ...(cfg.insecure ? { insecure: true } : {}),
      ...(cfg.injectSeqGapEvery ? { injectSeqGapEvery: cfg.injectSeqGapEvery } : {}),
    },
    publishers: [],
    subscribers: [],
  }))
  topo.publishers.forEach((p, i) =>
    plans[i % engines]?.publishers.push({ id: i, url: roundRobin(cfg.pubUrls, i), topic: p.topic, clientId: `cb${id}p${i}` }),
  )
  topo.subscribers.forEach((s, j) =>
    plans[j % engines]?.subscribers.push({
      id: j,
      url: roundRobin(cfg.subUrls, j),
      filter: s.filter,
      pubs: s.pubs,
      clientId: `cb${id}s${j}`,
      ...(topo.persistent ? { persistent: true } : {}),
    }),
  )
  return plans
}

const all = <T>(handles: EngineHandle[], f: (h: EngineHandle) => Promise<T>): Promise<T[]> => Promise.all(handles.map(f))

async function proveRoutes(handles: EngineHandle[]): Promise<void> {
  const deadline = Date.now() + PROBE_TIMEOUT_MS
  for (;;) {
    await all(handles, (h) => h.call('sendProbes'))
    await sleep(100)
    const missing = (await all(handles, (h) => h.call('missingProbes'))).reduce((a, b) => a + b, 0)
    if (missing === 0) return
    if (Date.now() > deadline) {
      throw new Error(`${missing} publisher/subscriber pair(s) saw no probe message within ${PROBE_TIMEOUT_MS / 1000} s`)
    }
    await sleep(100)
  }
}

function sumSnapshots(snaps: LoadSnapshot[], topo: Topology) {
  const sent = new Map<number, number>()
  for (const s of snaps) for (const [id, n] of s.sentByPub) sent.set(id, n)
  let expected = 0
  for (const sub of topo.subscribers) for (const p of sub.pubs) expected += sent.get(p) ?? 0
  for (const g of topo.groups ?? []) for (const p of g.pubs) expected += sent.get(p) ?? 0
  const sum = (f: (s: LoadSnapshot) => number): number => snaps.reduce((a, s) => a + f(s), 0)
  return {
    expected,
    published: sum((s) => s.published),
    received: sum((s) => s.received),
    duplicated: sum((s) => s.duplicated),
    gaps: sum((s) => s.gaps),
  }
}

/** how evenly each group's messages went to its members */
function sharedBalance(groups: NonNullable<Topology['groups']>, streams: StreamCounts[]): SharedResults {
  const perSub = new Map<number, number>()
  for (const s of streams) perSub.set(s.sub, (perSub.get(s.sub) ?? 0) + s.unique)
  const counts = groups.flatMap((g) => g.members.map((m) => perSub.get(m) ?? 0))
  const min = Math.min(...counts)
  const max = Math.max(...counts)
  return { groups: groups.length, members_per_group: groups[0]?.members.length ?? 0, min_member: min, max_member: max, balance: max > 0 ? round(min / max, 3) : 0 }
}

export async function runMessageScenario(
  cfg: ScenarioConfig,
  topo: Topology,
  observer?: RunObserver<FloodResults>,
): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString()
  const runId = newRunId()
  const engines = Math.max(1, Math.min(cfg.workers, topo.publishers.length + topo.subscribers.length))
  const handles = createEngines(engines, cfg.freshEngine)
  const progress = new Progress(cfg.progress)
  const tag = `${cfg.label ? `${cfg.label} ` : ''}${cfg.scenario} qos${cfg.qos}`
  let ticker: NodeJS.Timeout | null = null
  try {
    const plans = buildPlans(cfg, topo, runId, engines)
    await Promise.all(handles.map((h, i) => h.call('loadInit', plans[i] as LoadPlan)))
    progress.update(`[${tag}] connecting ${topo.subscribers.length} subscriber(s)`)
    await all(handles, (h) => h.call('connectSubscribers'))
    progress.update(`[${tag}] connecting ${topo.publishers.length} publisher(s)`)
    await all(handles, (h) => h.call('connectPublishers'))
    await proveRoutes(handles)

    await observer?.begin()
    const start = nowNs() + 50_000_000n
    const winStart = start + BigInt(Math.round(cfg.warmupS * 1e9))
    const winEnd = winStart + BigInt(Math.round(cfg.durationS * 1e9))
    await all(handles, (h) => h.call('start', { startNs: `${start}`, windowStartNs: `${winStart}`, windowEndNs: `${winEnd}` }))

    let last = { t: nowNs(), received: 0 }
    let busy = false
    ticker = setInterval(() => {
      if (busy) return
      busy = true
      all(handles, (h) => h.call('snapshot'))
        .then((snaps) => {
          const s = sumSnapshots(snaps, topo)
          const t = nowNs()
          const rate = (s.received - last.received) / (Number(t - last.t) / 1e9)
          last = { t, received: s.received }
          const elapsed = Number(t - start) / 1e9
          const phase = t < winStart ? 'warmup' : t < winEnd ? 'measure' : 'drain'
          progress.update(
            `[${tag}] ${elapsed.toFixed(1)}s/${(cfg.warmupS + cfg.durationS).toFixed(0)}s ${phase}  ` +
              `${fmtInt(rate)} msg/s  sent ${fmtInt(s.published)}  recv ${fmtInt(s.received)}  ` +
              `lost so far ${fmtInt(s.gaps)}  dup ${fmtInt(s.duplicated)}`,
          )
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false
        })
    }, 500)

    const meter = new GeneratorMeter(handles)
    const brokerCpu = new BrokerCpuMeter(cpuRoots(cfg.brokerProcesses, cfg.brokerPids))
    await sleepUntil(winStart)
    meter.begin()
    brokerCpu.begin()
    await sleepUntil(winEnd)
    brokerCpu.end()
    const generator = meter.end()
    observer?.loadStopped()
    await all(handles, (h) => h.call('stop', cfg.drainTimeoutS * 1000))

    // let deliveries in flight arrive: until everything owed is in, nothing moves for a second, or the timeout
    const drainDeadline = Date.now() + cfg.drainTimeoutS * 1000
    let prev = -1
    let idleSince = Date.now()
    for (;;) {
      const s = sumSnapshots(await all(handles, (h) => h.call('snapshot')), topo)
      if (s.received >= s.expected || Date.now() > drainDeadline) break
      if (s.received !== prev) {
        prev = s.received
        idleSince = Date.now()
      } else if (Date.now() - idleSince > (observer ? FLOOD_DRAIN_IDLE_MS : DRAIN_IDLE_MS)) break
      await sleep(50)
    }
    observer?.drained()
    if (ticker) clearInterval(ticker)
    ticker = null

    const finals: LoadFinal[] = await all(handles, (h) => h.call('final'))
    const dropped = (await all(handles, (h) => h.call('dropped'))).reduce((a, b) => a + b, 0)
    const pubs: PublisherCounts[] = finals.flatMap((f) => f.publishers)
    const streams: StreamCounts[] = finals.flatMap((f) => f.streams)
    const pairs = topo.subscribers.flatMap((s, j) => s.pubs.map((p): [number, number] => [j, p]))
    const t = tally(pubs, streams, pairs, finals.reduce((a, f) => a + f.unexpected, 0), topo.groups)
    const verdict = judge(cfg.qos, t)
    if (!verdict.valid && dropped > 0) {
      verdict.invalid_reason += `; ${dropped} connection(s) were closed by the broker during the run`
    }
    const { samples, ...latency } = summarize(mergeHistograms(finals.map((f) => f.histogram)))
    const sum = (f: (x: LoadFinal) => number): number => finals.reduce((a, x) => a + f(x), 0)
    const deliveriesPerS = sum((f) => f.receivedInWindow) / cfg.durationS
    const cpu = brokerCpu.result(sum((f) => f.receivedInWindow), cfg.durationS)
    const results: MessageResults = {
      kind: 'messages',
      publishers: topo.publishers.length,
      subscribers: topo.subscribers.length,
      published: sum((f) => f.published),
      published_per_s: round(sum((f) => f.publishedInWindow) / cfg.durationS),
      deliveries: sum((f) => f.receivedInWindow),
      deliveries_per_s: round(deliveriesPerS),
      payload_mb_per_s: round((deliveriesPerS * cfg.size) / 1e6, 3),
      expected_deliveries: t.expected,
      delivered_total: t.received,
      lost: t.lost,
      duplicated: t.duplicated,
      out_of_order: t.outOfOrder,
      unexpected: t.unexpected,
      unacked: t.unacked,
      dropped_connections: dropped,
      latency_samples: samples,
      ...latency,
      ...(cpu ? { broker_cpu: cpu } : {}),
      ...(observer ? { flood: await observer.finish() } : {}),
      ...(topo.groups ? { shared: sharedBalance(topo.groups, streams) } : {}),
    }
    const warnings: string[] = []
    if (cfg.qos === 0 && t.lost > 0) warnings.push(`QoS 0 lost ${t.lost} of ${t.expected} messages (allowed at QoS 0)`)
    if (t.outOfOrder > 0) warnings.push(`${t.outOfOrder} message(s) arrived out of order (MQTT keeps per-publisher, per-topic order)`)
    if (dropped > 0) warnings.push(`${dropped} connection(s) closed by the broker during the run`)
    if (generator.note) warnings.push(generator.note)
    if (cfg.scenario === 'latency' && results.published_per_s < cfg.rate * 0.95) {
      warnings.push(`asked for ${cfg.rate} msg/s, published ${results.published_per_s} msg/s`)
    }
    return {
      tool: 'culex-bench',
      version: VERSION,
      scenario: cfg.scenario,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      config: reportConfig(cfg, topo.publishers.length, topo.subscribers.length, { client_id_prefix: `cb${hex(runId)}`, ...(topo.persistent ? { persistent_sessions: true } : {}) }),
      results,
      valid: verdict.valid,
      invalid_reason: verdict.invalid_reason,
      allowed: { loss: cfg.qos === 0, duplicates: cfg.qos === 1 },
      warnings,
      generator,
    }
  } finally {
    observer?.abort()
    if (ticker) clearInterval(ticker)
    progress.done()
    await terminateAll(handles)
  }
}
