/**
 * What a chaos scenario reports: totals and per-publisher counts, reconnect times, printed to
 * the test output and, when CULEX_CHAOS_RESULTS names a file (`npm run chaos`), appended to it as
 * one JSON line; chaos-report.ts turns those lines into bench/results/chaos.md.
 */
import { appendFileSync } from 'node:fs'
import { expect } from 'vitest'
import type { StreamCounts } from './stream.js'
import type { Load, Outage } from './load.js'
import { PROFILE } from './profile.js'

export interface ScenarioResult {
  scenario: string
  /** the vitest test ("describe > title"), whose pass or fail the report shows */
  test: string
  profile: string
  /** seconds of load */
  seconds: number
  /** what load the scenario held, when not a publish rate (e.g. the replay rate of a resumed session) */
  held?: string
  /** msg/s asked for, msg/s acknowledged */
  rateTarget: number
  rateHeld: number
  acknowledged: number
  delivered: number
  lost: number
  duplicated: number
  outOfOrder: number
  /** client outages, ms from connection loss to CONNACK */
  reconnects: number
  reconnectMaxMs: number
  reconnectP50Ms: number
  /** the client that took longest */
  reconnectMaxClient?: string
  /** messages a subscriber got again on a clean resume after the run, when nothing was owed to it */
  stale?: number
  streams: StreamCounts[]
  /** what happened during the run (kills, restarts), with times */
  events: string[]
}

export function summarize(scenario: string, o: { seconds: number; rateTarget: number; held?: string; streams: StreamCounts[]; outages: Outage[]; events: string[]; stale?: number }): ScenarioResult {
  const sum = (k: keyof Omit<StreamCounts, 'stream' | 'lostSample'>): number => o.streams.reduce((n, s) => n + s[k], 0)
  const ms = o.outages.map((x) => x.ms).sort((a, b) => a - b)
  const slowest = [...o.outages].sort((a, b) => b.ms - a.ms)[0]
  const r: ScenarioResult = {
    scenario,
    test: expect.getState().currentTestName ?? scenario,
    profile: PROFILE.name,
    seconds: Math.round(o.seconds * 10) / 10,
    ...(o.held ? { held: o.held } : {}),
    rateTarget: o.rateTarget,
    rateHeld: Math.round(sum('acknowledged') / Math.max(0.1, o.seconds)),
    acknowledged: sum('acknowledged'),
    delivered: sum('delivered'),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    outOfOrder: sum('outOfOrder'),
    reconnects: ms.length,
    reconnectMaxMs: ms.at(-1) ?? 0,
    reconnectP50Ms: ms[Math.floor(ms.length / 2)] ?? 0,
    ...(slowest ? { reconnectMaxClient: slowest.client } : {}),
    ...(o.stale !== undefined ? { stale: o.stale } : {}),
    streams: o.streams,
    events: o.events,
  }
  record(r)
  return r
}

/** summarize() of a scenario run under a Load: its duration, target rate, streams and outages */
export function summarizeLoad(scenario: string, load: Load, events: string[], o: { stale?: number } = {}): ScenarioResult {
  return summarize(scenario, {
    seconds: load.seconds,
    rateTarget: load.o.rate,
    streams: load.streams.map((s) => s.counts()),
    outages: load.outages(),
    events,
    ...o,
  })
}

export function record(r: ScenarioResult): void {
  const rows = r.streams.map(
    (s) => `  ${s.stream.padEnd(8)} sent ${s.sent}  acked ${s.acknowledged}  delivered ${s.delivered}  lost ${s.lost}${s.lost ? ` (first: ${s.lostSample.join(',')})` : ''}  dup ${s.duplicated}  out-of-order ${s.outOfOrder}`,
  )
  process.stdout.write(
    [
      `chaos ${r.scenario} [${r.profile}]: ${r.held ?? `${r.seconds} s at ${r.rateHeld}/${r.rateTarget} msg/s`}; acked ${r.acknowledged}, delivered ${r.delivered}, lost ${r.lost}, duplicated ${r.duplicated}, out of order ${r.outOfOrder}${r.stale !== undefined ? `, stale on a later resume ${r.stale}` : ''}; ${r.reconnects} reconnects, max ${r.reconnectMaxMs} ms${r.reconnectMaxClient ? ` (${r.reconnectMaxClient})` : ''}, p50 ${r.reconnectP50Ms} ms`,
      ...rows,
      ...r.events.map((e) => `  event: ${e}`),
      '',
    ].join('\n'),
  )
  const file = process.env.CULEX_CHAOS_RESULTS
  if (file) appendFileSync(file, `${JSON.stringify(r)}\n`)
}

/** a failure message that says which publisher lost what */
export function lossReport(r: ScenarioResult): string {
  const bad = r.streams.filter((s) => s.lost > 0)
  return `${r.scenario}: ${r.lost} acknowledged QoS 1 message(s) never delivered: ${bad.map((s) => `${s.stream} lost ${s.lost} of ${s.acknowledged} (first seq ${s.lostSample.join(',')})`).join('; ')}`
}

/** event log with times relative to the scenario start */
export function eventLog(): { events: string[]; note(what: string): void } {
  const t0 = Date.now()
  const events: string[] = []
  return { events, note: (what) => events.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${what}`) }
}
