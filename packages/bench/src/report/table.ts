/** Plain-text tables for the terminal. */
import { buildMatrix, GEN_BUSY, generatorFlag, runKey, type Cell } from './matrix.js'
import { fmtBytes, fmtNum, INVALID_MARK } from './format.js'
import type { ScenarioReport, SuiteReport } from './types.js'

export function alignColumns(rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)))
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))).join('  '))
    .join('\n')
}

export function cellText(c: Cell): string {
  const ratio = c.ratio !== null ? ` (${c.ratio.toFixed(2)}×)` : ''
  return `${c.invalid ? `${INVALID_MARK} ` : ''}${c.text}${ratio}${c.flag ? ` ${c.flag}` : ''}`
}

export function scenarioTitle(r: ScenarioReport): string {
  const c = r.config
  if (r.scenario === 'connections') return `culex-bench connections: ${c.connections} idle connections, hold ${c.duration_s} s`
  const rate = c.rate_per_s ? `, ${c.rate_per_s} msg/s` : ''
  return (
    `culex-bench ${r.scenario}: qos ${c.qos}${c.protocol === 5 ? ', MQTT 5' : ''}, ${c.size_bytes} B, ${c.publishers} pub / ${c.subscribers} sub${rate}, ` +
    `${c.duration_s} s (+${c.warmup_s} s warmup), window ${c.window}, ${c.workers} generator thread(s)`
  )
}

export function renderScenarioTable(r: ScenarioReport): string {
  const rows: string[][] = []
  const res = r.results
  if (res.kind === 'messages') {
    rows.push(['deliveries_per_s', fmtNum(res.deliveries_per_s)])
    rows.push(['published_per_s', fmtNum(res.published_per_s)])
    rows.push(['payload_mb_per_s', fmtNum(res.payload_mb_per_s)])
    for (const k of ['p50_ms', 'p90_ms', 'p99_ms', 'p999_ms', 'max_ms', 'mean_ms'] as const) rows.push([k, fmtNum(res[k])])
    rows.push(['latency_samples', fmtNum(res.latency_samples)])
    rows.push(['expected_deliveries', fmtNum(res.expected_deliveries)])
    rows.push(['delivered_total', fmtNum(res.delivered_total)])
    rows.push(['lost', `${res.lost}${r.allowed.loss ? ' (allowed at this QoS)' : ''}`])
    rows.push(['duplicated', `${res.duplicated}${r.allowed.duplicates ? ' (allowed at this QoS)' : ''}`])
    rows.push(['out_of_order', String(res.out_of_order)])
    rows.push(['unexpected', String(res.unexpected)])
    rows.push(['unacked', String(res.unacked)])
    if (res.flood) {
      const f = res.flood
      rows.push(['broker_dropped', f.broker_dropped === null ? 'n/a (no /metrics)' : fmtNum(f.broker_dropped)])
      for (const p of f.peak_rss) rows.push([`peak_rss ${p.process}`, fmtBytes(p.bytes)])
      rows.push(['busy_after_stop_s', f.busy_after_stop_s === null ? 'n/a (no broker PID)' : fmtNum(f.busy_after_stop_s)])
      rows.push(['busy_after_drain_s', f.busy_after_drain_s === null ? 'n/a (no broker PID)' : fmtNum(f.busy_after_drain_s)])
    }
    if (res.shared) {
      const sh = res.shared
      rows.push(['groups x members', `${sh.groups} x ${sh.members_per_group}`])
      rows.push(['balance', `${fmtNum(sh.balance)} (fewest ${fmtNum(sh.min_member)}, most ${fmtNum(sh.max_member)} messages to one member)`])
    }
  } else {
    rows.push(['connected', `${res.connected} of ${res.connections_requested}`])
    rows.push(['failures', String(res.failures) + (res.failures ? ` ${JSON.stringify(res.failure_reasons)}` : '')])
    rows.push(['connects_per_s', fmtNum(res.connects_per_s)])
    rows.push(['ramp_s', fmtNum(res.ramp_s)])
    rows.push(['connect_p50_ms', fmtNum(res.connect_p50_ms)])
    rows.push(['connect_p99_ms', fmtNum(res.connect_p99_ms)])
    rows.push(['dropped_during_hold', String(res.dropped_during_hold)])
    rows.push(['source_addresses', res.source_addresses.join(', ')])
    rows.push(['rss_before (before the warm-up)', fmtBytes(res.rss_before_bytes)])
    rows.push(['rss_after', fmtBytes(res.rss_after_bytes)])
    rows.push(['rss_per_connection', fmtBytes(res.rss_per_connection_bytes)])
    if (res.heap_before_bytes !== undefined) {
      rows.push(['heap_before (after GC)', fmtBytes(res.heap_before_bytes)])
      rows.push(['heap_after (after GC)', fmtBytes(res.heap_after_bytes ?? null)])
      rows.push(['heap_per_connection', fmtBytes(res.heap_per_connection_bytes ?? null)])
    }
  }
  const cpu = res.broker_cpu
  if (cpu) {
    const per = res.kind === 'connections' ? 'connection' : 'delivery'
    rows.push(['broker_cpu', `${fmtNum(cpu.broker_us_per_delivery)} µs per ${per} (${fmtNum(cpu.broker_cpu_percent)}% of one core over ${fmtNum(cpu.window_s)} s)`])
    if (cpu.redis_us_per_delivery !== null) rows.push(['redis_cpu', `${fmtNum(cpu.redis_us_per_delivery)} µs per ${per}`])
    if (cpu.haproxy_us_per_delivery !== null) rows.push(['haproxy_cpu', `${fmtNum(cpu.haproxy_us_per_delivery)} µs per ${per}`])
    for (const p of cpu.processes) rows.push([`  cpu ${p.process}`, `${fmtNum(p.cpu_ms)} ms (${p.role})`])
  }
  const g = r.generator
  rows.push([
    'generator',
    `cpu ${g.cpu_percent}% of one core (${g.cores} cores), event loop ${g.event_loop_utilization.map((e) => `${Math.round(e * 100)}%`).join('/')}`,
  ])
  if (g.vm_steal_pct !== undefined && g.vm_steal_pct !== null) rows.push(['vm_steal', `${g.vm_steal_pct}% of the machine's CPU time went to other guests of its hypervisor`])
  const verdict = r.valid ? 'VALID' : `${INVALID_MARK} INVALID: ${r.invalid_reason}`
  const lines = [scenarioTitle(r), alignColumns(rows.map((x) => ['  ' + x[0], x[1] ?? ''])), verdict]
  for (const w of r.warnings) lines.push(`warning: ${w}`)
  return lines.join('\n')
}

export function suiteHeader(s: SuiteReport): string {
  const m = s.machine
  return (
    `culex-bench suite ${s.started_at}: ${m.nproc} × ${m.cpu_model}, ${(m.ram_bytes / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `node ${m.node}, load ${s.load_average.start[0]} → ${s.load_average.end[0]}; qos ${s.config.qos.join(',')}${s.config.protocols?.includes(5) ? `, MQTT ${s.config.protocols.map((p) => (p === 5 ? '5' : '3.1.1')).join(' and ')}` : ''}, ${s.config.size_bytes} B, ${s.config.duration_s} s (+${s.config.warmup_s} s warmup) per scenario`
  )
}

export function suiteFootnotes(s: SuiteReport): string[] {
  const notes: string[] = [
    `(n.nn×) = ratio to ${s.config.baseline}; higher is better for */s, lower for *_ms, broker_cpu and memory. ${INVALID_MARK} = invalid figure (see below).`,
  ]
  const runs = s.targets.flatMap((t) => t.runs)
  if (runs.some((r) => r.results.broker_cpu)) {
    notes.push(
      'broker_cpu = µs of CPU (user + system, all threads) the broker processes used over the measured window per delivery (per connection opened): what a message costs the broker, whether or not the load generator kept up; redis/haproxy_cpu the same for the cluster\'s Redis / HAProxy.',
    )
  }
  if (runs.some((r) => r.scenario === 'connections')) {
    notes.push(
      'heap_per_connection = growth of the V8 heap used, after a full GC, per idle connection (Culex nodes the suite started, summed over the nodes; the broker\'s own test measures the same in-process); rss_per_connection = growth of the resident memory from before the connect warm-up, per idle connection (for a Node process it also holds the code compiled and heap grown in the warm-up: compare heap_per_connection).',
    )
  }
  if (runs.some((r) => r.generator.vm_steal_pct !== undefined && r.generator.vm_steal_pct !== null)) {
    notes.push(
      'vm_steal_pct = share of the machine\'s CPU time (all cores) its hypervisor gave to other guests over the window (/proc/stat steal): the processes on the path could not run then, so a run with several % stolen measured less than the machine does when it is not shared; targets measured at different steal are not comparable.',
    )
  }
  if (runs.some((r) => generatorFlag(r) !== null)) {
    notes.push(
      `⚠gen N% = a load generator thread was N% busy over the window (> ${Math.round(GEN_BUSY * 100)}%): that rate is bounded by the generator, a floor of what the broker can do; compare broker_cpu (or run with more --workers).`,
    )
  }
  for (const t of s.targets) {
    if (t.status === 'skipped') notes.push(`${t.name}: skipped: ${t.reason}`)
    if (t.status === 'failed') notes.push(`${t.name}: failed: ${t.reason}`)
    for (const e of t.errors) notes.push(`${t.name} ${e.scenario}${e.qos !== null ? ` qos${e.qos}` : ''}: error: ${e.error}`)
    for (const r of t.runs) {
      if (!r.valid) notes.push(`${INVALID_MARK} ${t.name} ${runKey(r)}: ${r.invalid_reason}`)
    }
  }
  return notes
}

export function renderSuiteTable(s: SuiteReport): string {
  const rows = buildMatrix(s)
  const header = ['run', 'figure', ...s.targets.map((t) => t.name)]
  const body = rows.map((r) => [r.run, r.unit ? `${r.metric} (${r.unit})` : r.metric, ...r.cells.map(cellText)])
  return [suiteHeader(s), '', alignColumns([header, ...body]), '', ...suiteFootnotes(s)].join('\n')
}
