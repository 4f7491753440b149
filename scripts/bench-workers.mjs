#!/usr/bin/env node
// One generator thread or several: alternating short suite runs (workers 1, 2, 1, 2, ...) of the same
// scenario on the same targets, one line per target and run: rate, broker µs per delivery, broker CPU
// (% of a core), the generator's CPU and each thread's busy share, p50; and the load average, since on
// a machine with other work the figures say little. For deciding the suite's --workers on a small
// machine (the generator and the broker share its cores). After npm run build:
//   node scripts/bench-workers.mjs [--scenarios throughput,fanout,fanin] [--targets mosquitto,culex-1node]
//     [--workers 1,2] [--reps 2] [--duration 3]
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: o } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'throughput,fanout,fanin' },
    targets: { type: 'string', default: 'mosquitto,culex-1node' },
    workers: { type: 'string', default: '1,2' },
    reps: { type: 'string', default: '2' },
    duration: { type: 'string', default: '3' },
  },
})
const cli = fileURLToPath(new URL('../packages/bench/dist/cli.js', import.meta.url))
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` }
const rows = [['target', 'scenario', 'workers', 'msg/s', 'broker µs/msg', 'broker cpu', 'generator cpu', 'thread busy', 'p50 ms', 'load']]
for (const scenario of o.scenarios.split(',')) {
  for (let rep = 0; rep < Number(o.reps); rep++) {
    for (const w of o.workers.split(',')) {
      const args = [cli, 'suite', '--targets', o.targets, '--scenarios', scenario, '--workers', w, '--duration', o.duration, '--warmup', '1', '--no-write', '--json', '--no-progress']
      const r = spawnSync(process.execPath, args, { env, encoding: 'utf8', timeout: 120_000 })
      if (r.status !== 0) {
        console.error(`workers ${w} ${scenario}: exit ${r.status}\n${r.stderr}`)
        continue
      }
      const load = os.loadavg()[0].toFixed(1)
      for (const t of JSON.parse(r.stdout).targets) {
        for (const x of t.runs) {
          const c = x.results.broker_cpu
          const g = x.generator
          rows.push([
            t.name, scenario, w, Math.round(x.results.deliveries_per_s).toLocaleString('en-US'), String(c?.broker_us_per_delivery ?? 'n/a'),
            `${c?.broker_cpu_percent ?? 'n/a'}%`, `${g.cpu_percent}%`, g.event_loop_utilization.map((e) => `${Math.round(e * 100)}%`).join('/'),
            String(x.results.p50_ms), load,
          ])
        }
      }
    }
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  '))
