/** `culex-bench suite`, cut down to seconds: it starts and stops the brokers itself and writes its three files. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, runCli } from './helpers.js'

const out = mkdtempSync(path.join(os.tmpdir(), 'culex-bench-suite-'))

beforeAll(ensureBuilt, 120_000)
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe('suite', () => {
  it('runs the scenarios side by side on Mosquitto and a Culex node and writes JSON, Markdown and SVG', async () => {
    const r = await runCli([
      'suite', '--targets', 'mosquitto,culex-1node', '--scenarios', 'throughput,connections', '--qos', '1',
      '--duration', '0.5', '--warmup', '0', '--pairs', '1', '--connections', '300',
      '--results-dir', out, '--name', 'mini', '--json', '--no-progress',
    ], 50_000)
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ kind: 'suite', config: { baseline: 'mosquitto', qos: [1] } })
    expect(report.machine.nproc).toBeGreaterThan(0)
    expect(report.targets.map((t: any) => [t.name, t.status, t.runs.length])).toEqual([
      ['mosquitto', 'ok', 2],
      ['culex-1node', 'ok', 2],
    ])
    for (const t of report.targets) {
      const tp = t.runs.find((x: any) => x.scenario === 'throughput')
      expect(tp.valid).toBe(true)
      expect(tp.results.lost).toBe(0)
      // the broker's own CPU over the measured window, per delivery: there, and plausible
      const cpu = tp.results.broker_cpu
      expect(cpu.processes.map((p: any) => p.role)).toEqual(['broker'])
      expect(cpu.deliveries).toBe(tp.results.deliveries)
      expect(cpu.broker_us_per_delivery, `${t.name}: ${JSON.stringify(cpu)}`).toBeGreaterThan(0)
      expect(cpu.broker_us_per_delivery).toBeLessThan(2000)
      // the broker's RSS is read before the warm-up and with the connections open; a Node process can
      // shrink (a GC), and then the figure is left out with a warning saying so rather than reported as 0
      const conn = t.runs.find((x: any) => x.scenario === 'connections')
      expect(conn.results.rss_before_bytes).toBeGreaterThan(0)
      if (conn.results.rss_per_connection_bytes === null) expect(conn.warnings.join(' ')).toMatch(/RSS did not grow over the ramp/)
      else expect(conn.results.rss_per_connection_bytes).toBeGreaterThan(0)
      expect(conn.results.broker_cpu.deliveries).toBe(300)
    }
    // the Culex node's V8 heap after a full GC grows by what an idle connection holds: about what the
    // broker's test/node/idle-memory.test.ts measures in-process (~3.9 KB); Mosquitto has no such figure
    const heap = (name: string) => report.targets.find((t: any) => t.name === name).runs.find((x: any) => x.scenario === 'connections').results
    expect(heap('mosquitto').heap_per_connection_bytes).toBeUndefined()
    expect(heap('culex-1node')).toMatchObject({ heap_nodes: 1 })
    expect(heap('culex-1node').heap_per_connection_bytes).toBeGreaterThan(1000)
    expect(heap('culex-1node').heap_per_connection_bytes).toBeLessThan(10_000)
    // the table goes to stderr when stdout carries the JSON
    expect(r.stderr).toMatch(/throughput qos1\s+deliveries_per_s \(msg\/s\)\s+[\d,.]+ \(1\.00×\)(?: ⚠gen \d+%)?\s+[\d,.]+ \([\d.]+×\)/)
    expect(r.stderr).toMatch(/throughput qos1\s+broker_cpu \(µs\/delivery\)\s+[\d,.]+ \(1\.00×\)\s+[\d,.]+ \([\d.]+×\)/)
    for (const ext of ['json', 'md', 'svg']) expect(existsSync(path.join(out, `mini.${ext}`))).toBe(true)
    expect(readFileSync(path.join(out, 'mini.md'), 'utf8')).toContain('| run | figure | mosquitto | culex-1node |')
    expect(readFileSync(path.join(out, 'mini.svg'), 'utf8')).toContain('<svg')
    // every broker it started is gone
    for (const t of report.targets) for (const u of t.pub_urls) expect(await runCli(['throughput', '--url', u, '--duration', '0.2'], 10_000)).toMatchObject({ code: 1 })
  }, 60_000)

  it('reports a target it cannot start as skipped, with the reason, without failing', async () => {
    const r = await runCli([
      'suite', '--targets', 'mosquitto,culex-3nodes-haproxy', '--scenarios', 'latency', '--rate', '50',
      '--duration', '0.3', '--warmup', '0', '--broker-cli', '/nonexistent/cli.js', '--no-write',
    ], 30_000)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/culex-3nodes-haproxy: skipped: \/nonexistent\/cli\.js not found/)
    expect(r.stdout).toMatch(/latency qos1\s+p50_ms \(ms\)\s+[\d.]+ \(1\.00×\)\s+skipped/)
  }, 40_000)

  it('skips a target whose program is missing, and still exits 0', async () => {
    const r = await runCli(['suite', '--targets', 'mosquitto', '--scenarios', 'fanin', '--mosquitto', 'no-such-mosquitto', '--no-write'], 20_000)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/fanin qos1\s+deliveries_per_s \(msg\/s\)\s+skipped/)
    expect(r.stdout).toMatch(/mosquitto: skipped: no-such-mosquitto not found on PATH/)
  })

  it('exits 1 when a target fails to start, naming it', async () => {
    const bad = path.join(out, 'bad-cli.js')
    writeFileSync(bad, "process.stderr.write('boom: cannot start\\n'); process.exit(2)\n")
    const r = await runCli(['suite', '--targets', 'culex-1node', '--scenarios', 'latency', '--broker-cli', bad, '--no-write'], 40_000)
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/culex-1node: failed: culex node: process exited before it was ready/)
    expect(r.stdout).toMatch(/boom: cannot start/)
  }, 45_000)
})
