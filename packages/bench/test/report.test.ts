import { describe, expect, it } from 'vitest'
import { renderChart } from '../src/report/chart.js'
import { renderMarkdown } from '../src/report/markdown.js'
import { buildMatrix } from '../src/report/matrix.js'
import { renderScenarioTable, renderSuiteTable } from '../src/report/table.js'
import { cpuTimes, stealPercent } from '../src/selfcheck.js'
import type { MessageResults, ScenarioReport, SuiteReport, TargetReport } from '../src/report/types.js'

function run(deliveries: number, p99: number, lost = 0): ScenarioReport {
  const results: MessageResults = {
    kind: 'messages',
    publishers: 4,
    subscribers: 4,
    published: 1000,
    published_per_s: deliveries,
    deliveries: deliveries * 5,
    deliveries_per_s: deliveries,
    payload_mb_per_s: 1,
    expected_deliveries: 1000,
    delivered_total: 1000 - lost,
    lost,
    duplicated: 0,
    out_of_order: 0,
    unexpected: 0,
    unacked: 0,
    dropped_connections: 0,
    latency_samples: 500,
    mean_ms: 1,
    p50_ms: 1,
    p90_ms: 2,
    p99_ms: p99,
    p999_ms: p99,
    max_ms: p99,
  }
  return {
    tool: 'culex-bench',
    version: '0.1.0',
    scenario: 'throughput',
    started_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:00:06.000Z',
    config: {
      qos: 1,
      size_bytes: 64,
      duration_s: 5,
      warmup_s: 1,
      workers: 1,
      window: 20,
      pairs: 4,
      publishers: 4,
      subscribers: 4,
      rate_per_s: null,
      connections: null,
      pub_urls: ['mqtt://127.0.0.1:1'],
      sub_urls: ['mqtt://127.0.0.1:1'],
    },
    results,
    valid: lost === 0,
    invalid_reason: lost ? `${lost} message(s) lost at QoS 1, which must not lose` : null,
    allowed: { loss: false, duplicates: true },
    warnings: [],
    generator: { threads: 1, cores: 2, cpu_percent: 50, cpu_user_ms: 1, cpu_system_ms: 1, event_loop_utilization: [0.5], saturated: false, note: null },
  }
}

const target = (name: string, runs: ScenarioReport[], status: TargetReport['status'] = 'ok', reason: string | null = null): TargetReport => ({
  name,
  description: name,
  status,
  reason,
  pub_urls: [],
  sub_urls: [],
  runs,
  errors: [],
})

const suite: SuiteReport = {
  tool: 'culex-bench',
  version: '0.1.0',
  kind: 'suite',
  started_at: '2026-01-01T00:00:00.000Z',
  finished_at: '2026-01-01T00:01:00.000Z',
  machine: { nproc: 2, cpu_model: 'Test CPU', ram_bytes: 8 * 2 ** 30, os: 'Linux', node: 'v20' },
  load_average: { start: [0.5, 0.4, 0.3], end: [1.5, 0.9, 0.5] },
  config: { scenarios: ['throughput'], qos: [1], duration_s: 5, warmup_s: 1, size_bytes: 64, workers: 1, baseline: 'mosquitto' },
  targets: [
    target('mosquitto', [run(1000, 2)]),
    target('culex-1node', [run(2000, 1)]),
    target('culex-2nodes', [run(500, 8, 12)]),
    target('culex-3nodes-haproxy', [], 'skipped', '`culex cluster up` is not available'),
  ],
}

describe('suite matrix with MQTT 3.1.1 and 5 (--protocol 3.1.1,5)', () => {
  const v5 = (r: ScenarioReport): ScenarioReport => ({ ...r, config: { ...r.config, protocol: 5 } })
  const both: SuiteReport = {
    ...suite,
    config: { ...suite.config, protocols: [4, 5] },
    targets: [target('mosquitto', [run(1000, 2), v5(run(900, 3))]), target('culex-1node', [run(2000, 1), v5(run(1800, 1))])],
  }

  it('gives the v5 runs their own rows, each compared with the baseline at the same protocol', () => {
    const rows = buildMatrix(both).filter((r) => r.metric === 'deliveries_per_s')
    expect(rows.map((r) => r.run)).toEqual(['throughput qos1', 'throughput qos1 v5'])
    expect(rows.map((r) => r.cells.map((c) => c.value))).toEqual([
      [1000, 2000],
      [900, 1800],
    ])
  })

  it('says MQTT 5 in the suite and scenario headings', () => {
    expect(renderSuiteTable(both)).toContain('MQTT 3.1.1 and 5')
    expect(renderScenarioTable(v5(run(900, 3)))).toContain('qos 1, MQTT 5,')
  })
})

describe('suite matrix', () => {
  const rows = buildMatrix(suite)
  const row = (metric: string) => rows.find((r) => r.metric === metric)

  it('gives each figure its ratio to the baseline', () => {
    expect(row('deliveries_per_s')?.cells.map((c) => c.ratio)).toEqual([1, 2, 0.5, null])
    expect(row('p99_ms')?.cells.map((c) => c.ratio)).toEqual([1, 0.5, 4, null])
  })

  it('marks figures that came with forbidden losses', () => {
    const cells = row('deliveries_per_s')?.cells ?? []
    expect(cells.map((c) => c.invalid)).toEqual([false, false, true, false])
    expect(cells[2]?.reason).toMatch(/lost at QoS 1/)
    expect(row('lost/dup/ooo')?.cells[2]?.text).toBe('12/0/0')
  })

  it('shows a skipped target as skipped with its reason', () => {
    const cell = row('deliveries_per_s')?.cells[3]
    expect(cell).toMatchObject({ text: 'skipped', value: null, invalid: false })
    expect(cell?.reason).toMatch(/cluster up/)
  })
})

describe('renderers', () => {
  it('terminal table: ratios, invalid mark and footnotes', () => {
    const t = renderSuiteTable(suite)
    expect(t).toContain('2,000 (2.00×)')
    expect(t).toContain('✗ 500 (0.50×)')
    expect(t).toMatch(/✗ culex-2nodes throughput qos1: 12 message\(s\) lost/)
    expect(t).toMatch(/culex-3nodes-haproxy: skipped: `culex cluster up` is not available/)
  })

  it('single scenario table states validity', () => {
    expect(renderScenarioTable(run(1000, 2))).toMatch(/^VALID$/m)
    expect(renderScenarioTable(run(1000, 2, 3))).toMatch(/✗ INVALID: 3 message\(s\) lost/)
  })

  it('markdown report has a table row per figure and links the chart', () => {
    const md = renderMarkdown(suite, 'suite.svg')
    expect(md).toContain('| run | figure | mosquitto | culex-1node | culex-2nodes | culex-3nodes-haproxy |')
    expect(md).toMatch(/\| throughput qos1 \| deliveries_per_s \(msg\/s\) \| 1,000 \(1\.00×\) \| 2,000 \(2\.00×\) \| ✗ 500 \(0\.50×\) \| skipped \|/)
    expect(md).toContain('![suite chart](suite.svg)')
    expect(md).toContain('Test CPU')
    expect(md).toContain('8.0 GiB RAM')
    expect(md).toContain('at start 0.5 / 0.4 / 0.3, at end 1.5 / 0.9 / 0.5')
  })

  it('chart is a standalone SVG with the invalid bar hatched', () => {
    const svg = renderChart(suite)
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    expect(svg).toContain('fill="url(#hatch)"')
    expect(svg).toContain('skipped')
    expect(svg).not.toMatch(/<script/)
  })
})

describe('broker CPU per delivery and generator saturation in the suite table', () => {
  const cpu = (us: number, redis: number | null = null, haproxy: number | null = null) => ({
    window_s: 5,
    deliveries: 5000,
    processes: [{ process: 'b', role: 'broker' as const, cpu_ms: us * 5 }],
    broker_cpu_ms: us * 5,
    broker_cpu_percent: us / 10,
    broker_us_per_delivery: us,
    redis_us_per_delivery: redis,
    haproxy_us_per_delivery: haproxy,
  })
  const withCpu = (r: ScenarioReport, c: ReturnType<typeof cpu>, elu = 0.5): ScenarioReport => ({
    ...r,
    results: { ...(r.results as MessageResults), broker_cpu: c },
    generator: { ...r.generator, event_loop_utilization: [elu] },
  })
  const s2 = (targets: TargetReport[]): SuiteReport => ({ ...suite, targets })

  it('gives broker_cpu its ratio to the baseline (lower is better) and leaves the Redis/HAProxy row out when no target has them', () => {
    const rows = buildMatrix(s2([target('mosquitto', [withCpu(run(1000, 2), cpu(8))]), target('culex-1node', [withCpu(run(900, 2), cpu(12))])]))
    const row = rows.find((r) => r.metric === 'broker_cpu')
    expect(row).toMatchObject({ unit: 'µs/delivery', higherIsBetter: false })
    expect(row?.cells.map((c) => [c.text, c.ratio])).toEqual([
      ['8.0', 1],
      ['12.0', 1.5],
    ])
    expect(rows.some((r) => r.metric === 'redis/haproxy_cpu')).toBe(false)
  })

  it('shows Redis and HAProxy CPU per delivery for the cluster targets', () => {
    const t = renderSuiteTable(s2([target('mosquitto', [withCpu(run(1000, 2), cpu(8))]), target('culex-3nodes-haproxy', [withCpu(run(900, 2), cpu(20, 1.5, 6.25))])]))
    expect(t).toMatch(/redis\/haproxy_cpu \(µs\/delivery\)\s+n\/a\s+1\.5 \/ 6\.3/)
    expect(t).toMatch(/^broker_cpu = µs of CPU/m)
  })

  it('flags a rate measured with a generator thread over 90% busy, next to its ratio, and explains the flag', () => {
    const t = renderSuiteTable(s2([target('mosquitto', [withCpu(run(1000, 2), cpu(8), 0.99)]), target('culex-1node', [withCpu(run(900, 2), cpu(12), 0.4)])]))
    expect(t).toMatch(/deliveries_per_s \(msg\/s\)\s+1,000 \(1\.00×\) ⚠gen 99%\s+900 \(0\.90×\)$/m)
    expect(t).toMatch(/^⚠gen N% = a load generator thread was N% busy/m)
    expect(renderSuiteTable(s2([target('mosquitto', [withCpu(run(1000, 2), cpu(8), 0.9)])]))).not.toContain('⚠gen')
  })

  it('shows the VM steal of each run and what it means, and leaves the row out of reports without it', () => {
    const stolen = (r: ScenarioReport, pct: number): ScenarioReport => ({ ...r, generator: { ...r.generator, vm_steal_pct: pct } })
    const t = renderSuiteTable(s2([target('mosquitto', [stolen(run(1000, 2), 0.1)]), target('culex-1node', [stolen(run(900, 2), 31.5)])]))
    expect(t).toMatch(/vm_steal_pct \(%\)\s+0\.1%\s+31\.5%$/m)
    expect(t).toMatch(/^vm_steal_pct = share of the machine's CPU time/m)
    expect(renderSuiteTable(s2([target('mosquitto', [run(1000, 2)])]))).not.toContain('vm_steal')
  })
})

describe('VM steal over a window (/proc/stat)', () => {
  it('is the steal ticks over all the ticks between two readings, as a percentage', () => {
    expect(stealPercent([1000, 10], [3000, 510])).toBe(25)
    expect(stealPercent([1000, 10], [1000, 10])).toBeNull()
    expect(stealPercent(null, [1, 0])).toBeNull()
  })

  it.runIf(process.platform === 'linux')('reads the machine\'s total and steal ticks, which only grow', () => {
    const a = cpuTimes()!
    for (let i = 0; i < 1e6; i++) Math.sqrt(i)
    const b = cpuTimes()!
    expect(b[0]).toBeGreaterThanOrEqual(a[0])
    expect(b[1]).toBeGreaterThanOrEqual(a[1])
    expect(b[1]).toBeLessThanOrEqual(b[0])
  })
})
