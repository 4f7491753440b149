/**
 * Every scenario, briefly, against a real Mosquitto and a real Culex node,
 * through the built CLI with --json: the report has its shape, lossless runs
 * report zero losses, and losses a QoS forbids are flagged.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { culexNode, findBin, mosquitto, type StartedTarget } from '../src/suite/brokers.js'
import { freePorts } from '../src/suite/ports.js'
import { BRIEF, BROKER_CLI, ensureBuilt, runCli, runJson } from './helpers.js'

const MESSAGE_KEYS = [
  'published', 'published_per_s', 'deliveries', 'deliveries_per_s', 'expected_deliveries', 'delivered_total',
  'lost', 'duplicated', 'out_of_order', 'unexpected', 'unacked', 'p50_ms', 'p90_ms', 'p99_ms', 'p999_ms', 'max_ms',
]

function expectLossless(report: any): void {
  expect(report.tool).toBe('culex-bench')
  expect(report.valid).toBe(true)
  expect(report.invalid_reason).toBeNull()
  for (const k of MESSAGE_KEYS) expect(report.results, k).toHaveProperty(k)
  const r = report.results
  expect(r.lost).toBe(0)
  expect(r.duplicated).toBe(0)
  expect(r.unexpected).toBe(0)
  expect(r.unacked).toBe(0)
  expect(r.deliveries_per_s).toBeGreaterThan(0)
  expect(r.expected_deliveries).toBeGreaterThan(0)
  expect(r.delivered_total).toBe(r.expected_deliveries)
  expect(r.p50_ms).toBeGreaterThan(0)
  expect(r.max_ms).toBeGreaterThanOrEqual(r.p99_ms)
  expect(report.generator.cpu_percent).toBeGreaterThan(0)
  expect(report.generator.event_loop_utilization.length).toBe(report.generator.threads)
}

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'culex-bench-test-'))
const brokers: Record<string, StartedTarget & { ws: string }> = {}

beforeAll(async () => {
  await ensureBuilt()
  // no queue overrides: the Culex node runs with its shipped limits and must still be lossless
  const [wsPort] = (await freePorts(1)) as [number]
  const ctx = {
    brokerCli: BROKER_CLI,
    mosquittoBin: findBin('mosquitto'),
    redisBin: findBin('redis-server'),
    tmpRoot,
    mosquittoConf: ['max_queued_messages 1000000', `listener ${wsPort} 127.0.0.1`, 'protocol websockets'],
  }
  const [m, c] = await Promise.all([mosquitto.start(ctx), culexNode.start(ctx)])
  brokers.mosquitto = { ...m, ws: `ws://127.0.0.1:${wsPort}/mqtt` }
  brokers.culex = { ...c, ws: c.wsUrls?.[0] ?? '' }
}, 60_000)

afterAll(async () => {
  await Promise.all(Object.values(brokers).map((b) => b.stop()))
  rmSync(tmpRoot, { recursive: true, force: true })
})

for (const name of ['mosquitto', 'culex']) {
  describe(`against ${name}`, () => {
    const b = () => brokers[name] as StartedTarget & { ws: string }
    const url = () => b().pubUrls[0] as string

    it('throughput at QoS 2 over two pairs is lossless', async () => {
      const { code, report } = await runJson(['throughput', '--url', url(), '--qos', '2', '--pairs', '2', ...BRIEF])
      expect(code).toBe(0)
      expectLossless(report)
      expect(report.config).toMatchObject({ qos: 2, pairs: 2, publishers: 2, subscribers: 2 })
      expect(report.allowed).toEqual({ loss: false, duplicates: false })
    })

    it('throughput at QoS 1 with MQTT 5 clients (--protocol 5) is lossless and says so in the report', async () => {
      const { code, report } = await runJson(['throughput', '--url', url(), '--qos', '1', '--pairs', '2', '--protocol', '5', ...BRIEF])
      expect(code).toBe(0)
      expectLossless(report)
      expect(report.config).toMatchObject({ qos: 1, protocol: 5, pairs: 2 })
    })

    it('persistent at QoS 1: subscribers with a session get every message once, and no session is left after the run [MQTT-3.1.2-6]', async () => {
      const { code, report } = await runJson(['persistent', '--url', url(), '--qos', '1', '--pairs', '2', ...BRIEF])
      expect(code).toBe(0)
      expectLossless(report)
      expect(report.config).toMatchObject({ qos: 1, pairs: 2, persistent_sessions: true })
      // a subscriber's id, back with clean 0: no session present (the bench ended it)
      const c = mqtt.connect(url(), { clientId: `${report.config.client_id_prefix}s0`, clean: false, reconnectPeriod: 0 })
      const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
        c.once('connect', resolve)
        c.once('error', reject)
      })
      expect(connack.sessionPresent).toBe(false)
      await c.endAsync()
    })

    it('fanout at QoS 1, subscribers over WebSocket, delivers every message to every subscriber', async () => {
      const { report } = await runJson(['fanout', '--pub', url(), '--sub', b().ws, '--qos', '1', '--subscribers', '3', ...BRIEF])
      expectLossless(report)
      expect(report.results.subscribers).toBe(3)
      expect(report.results.delivered_total).toBe(report.results.published * 3)
    })

    it('fanin at QoS 1 on a wildcard subscription is lossless', async () => {
      const { report } = await runJson(['fanin', '--url', url(), '--qos', '1', '--publishers', '3', ...BRIEF])
      expectLossless(report)
      expect(report.results).toMatchObject({ publishers: 3, subscribers: 1 })
    })

    it('shared at QoS 1: each message once to one member of each $share group, spread over the members', async () => {
      const { report } = await runJson(['shared', '--url', url(), '--qos', '1', '--publishers', '2', '--groups', '2', '--members', '2', ...BRIEF])
      expectLossless(report)
      expect(report.results.delivered_total).toBe(report.results.published * 2)
      expect(report.results.shared).toMatchObject({ groups: 2, members_per_group: 2 })
      expect(report.results.shared.balance).toBeGreaterThan(0.3)
    })

    it('latency at QoS 0 holds the asked rate and reports percentiles', async () => {
      const { report } = await runJson(['latency', '--url', url(), '--qos', '0', '--rate', '200', ...BRIEF])
      expectLossless(report)
      expect(report.results.published_per_s).toBeGreaterThan(180)
      expect(report.results.published_per_s).toBeLessThan(220)
      const r = report.results
      expect(r.p50_ms).toBeLessThanOrEqual(r.p90_ms)
      expect(r.p90_ms).toBeLessThanOrEqual(r.p99_ms)
      expect(r.p99_ms).toBeLessThanOrEqual(r.p999_ms)
    })

    it('flood at QoS 1 without an in-flight window is lossless and reports the peak RSS of the broker process', async () => {
      const pid = String(b().processes[0]?.pid)
      const mem = b().metricsUrls.length ? ['--metrics-url', b().metricsUrls[0] as string] : []
      // the generator reads its deliveries at a fraction of its old cost (client/frames.ts): a second of flood
      // is 10-20x the messages it was, more than 5 s drain on a loaded 2-core machine (still lossless when drained; 20 s keeps within the test timeout)
      const { code, report } = await runJson(['flood', '--url', url(), '--qos', '1', '--subscribers', '3', '--broker-pid', pid, ...mem, ...BRIEF, '--drain-timeout', '20'])
      expect(code).toBe(0)
      expectLossless(report)
      expect(report.config).toMatchObject({ qos: 1, publishers: 1, subscribers: 3, window: 65000 })
      const f = report.results.flood
      expect(f.peak_rss).toEqual([{ process: `pid ${pid}`, bytes: expect.any(Number) }])
      expect(f.peak_rss_max_bytes).toBeGreaterThan(1024 * 1024)
      expect(f.busy_after_stop_s).toBeGreaterThanOrEqual(0)
      // Culex counts what it drops; Mosquitto has no /metrics
      expect(f.broker_dropped).toBe(name === 'culex' ? 0 : null)
    })

    it('connections ramps, holds, and reads broker memory', async () => {
      const mem = b().brokerPids.length ? ['--broker-pid', String(b().brokerPids[0])] : ['--metrics-url', b().metricsUrls[0] as string]
      const { code, report } = await runJson(['connections', '--url', url(), '--connections', '60', '--connect-warmup', '30', '--duration', '0.5', '--source-addresses', '2', ...mem])
      expect(code).toBe(0)
      expect(report.valid).toBe(true)
      // the 30 warm-up connections were opened and closed before the ramp: none is held, none failed
      expect(report.results).toMatchObject({ kind: 'connections', connections_requested: 60, warmup_connections: 30, connected: 60, failures: 0, dropped_during_hold: 0 })
      expect(report.results.connects_per_s).toBeGreaterThan(0)
      expect(report.results.source_addresses).toEqual(['127.0.0.1', '127.0.0.2'])
      expect(report.results.rss_before_bytes).toBeGreaterThan(0)
      expect(report.results.rss_after_bytes).toBeGreaterThan(0)
      // a figure when the broker's RSS grew over the ramp, else none and a warning saying why
      if (report.results.rss_after_bytes > report.results.rss_before_bytes) expect(report.results.rss_per_connection_bytes).toBeGreaterThan(0)
      else {
        expect(report.results.rss_per_connection_bytes).toBeNull()
        expect(report.warnings.join(' ')).toMatch(/RSS did not grow/)
      }
    })
  })
}

describe('loss detection', () => {
  it('a publisher that skips sequence numbers shows up as loss, invalid at QoS 1', async () => {
    const { code, report } = await runJson(['throughput', '--url', brokers.mosquitto?.pubUrls[0] as string, '--qos', '1', '--pairs', '1', '--inject-seq-gap', '50', ...BRIEF])
    expect(code).toBe(3)
    expect(report.valid).toBe(false)
    expect(report.invalid_reason).toMatch(/lost at QoS 1/)
    const r = report.results
    expect(r.lost).toBeGreaterThan(0)
    expect(r.lost + r.delivered_total).toBe(r.expected_deliveries)
    // one sequence number in 50 is skipped (49 sent per 50 numbers)
    expect(r.lost).toBeGreaterThanOrEqual(Math.floor(r.expected_deliveries / 50) - 1)
    expect(r.lost).toBeLessThanOrEqual(Math.ceil(r.expected_deliveries / 50) + 1)
  })

  it('the same gap at QoS 0 is counted but allowed, with a warning', async () => {
    const args = ['latency', '--url', brokers.culex?.pubUrls[0] as string, '--qos', '0', '--rate', '200', '--inject-seq-gap', '10', ...BRIEF]
    const { code, report } = await runJson(args)
    expect(code).toBe(0)
    expect(report.valid).toBe(true)
    expect(report.results.lost).toBeGreaterThan(10)
    expect(report.warnings.join(' ')).toMatch(/QoS 0 lost/)
  })

  it('--progress writes the live line to stderr and leaves --json stdout clean', async () => {
    const { report, stderr } = await runJson(['latency', '--url', brokers.culex?.pubUrls[0] as string, '--rate', '100', '--progress', '--workers', '2', ...BRIEF])
    expect(report.valid).toBe(true)
    expect(report.generator.threads).toBe(2)
    expect(stderr).toMatch(/\r\[latency qos1\] .*msg\/s/)
  })

  it('a broker that is not there fails the run with a message, not a report', async () => {
    const [port] = (await freePorts(1)) as [number]
    const r = await runCli(['throughput', '--url', `mqtt://127.0.0.1:${port}`, ...BRIEF])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ECONNREFUSED/)
  })
})
