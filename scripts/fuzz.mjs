// The long mutation-fuzz run: `npm run fuzz -- --cases 1000000 [--seed N] [--mode memory,redis]
// [--transport tcp,ws] [--protocol 3.1.1|5|both] [--workers 64] [--timeout-ms 250] [--out results.jsonl]`.
// Runs packages/broker/test/security/fuzz.test.ts (one real node per mode, a well-behaved QoS 1
// client per transport and protocol level) with the cases split evenly over mode x transport
// (--protocol both: MQTT 3.1.1 and MQTT 5 sessions side by side), then prints cases run (by
// level), crashes, escaped exceptions and canary messages sent/lost. Exits non-zero on any crash,
// escaped exception or lost message.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: o } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    mode: { type: 'string', default: 'memory,redis' },
    transport: { type: 'string', default: 'tcp,ws' },
    protocol: { type: 'string', default: 'both' },
    workers: { type: 'string', default: '64' },
    'timeout-ms': { type: 'string', default: '250' },
    out: { type: 'string' },
  },
})
const root = fileURLToPath(new URL('..', import.meta.url))
const out = o.out ?? join(tmpdir(), `culex-fuzz-${process.pid}.jsonl`)
const started = new Date()
const env = {
  ...process.env,
  CULEX_FUZZ_CASES: o.cases,
  CULEX_FUZZ_SEED: o.seed,
  CULEX_FUZZ_MODES: o.mode,
  CULEX_FUZZ_TRANSPORTS: o.transport,
  CULEX_FUZZ_PROTOCOL: o.protocol,
  CULEX_FUZZ_WORKERS: o.workers,
  CULEX_FUZZ_TIMEOUT_MS: o['timeout-ms'],
  CULEX_FUZZ_OUT: out,
}
if (!['3.1.1', '5', 'both'].includes(o.protocol)) {
  console.error(`--protocol: 3.1.1, 5 or both, not ${o.protocol}`)
  process.exit(2)
}
console.log(`culex fuzz: ${o.cases} cases, seed ${o.seed}, protocol ${o.protocol}, modes ${o.mode}, transports ${o.transport}, ${o.workers} workers; results in ${out}`)
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
const child = spawn(process.execPath, [vitest, 'run', 'packages/broker/test/security/fuzz.test.ts'], { cwd: root, env, stdio: 'inherit' })
child.on('exit', (code) => {
  const rows = existsSync(out)
    ? readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.seed === Number(o.seed))
    : []
  // rows of an earlier run into the same --out file with the same seed but another protocol are not this run's
  const mine = rows.filter((r) => (r.protocol ?? '3.1.1') === o.protocol)
  const sum = (k) => mine.reduce((n, r) => n + (Number(r[k]) || 0), 0)
  const seconds = (Date.now() - started.getTime()) / 1000
  console.log('\nmode    transport  cases      3.1.1      v5         crashes  exceptions  canary sent  canary lost  cases/s')
  for (const r of mine) {
    console.log(`${r.mode.padEnd(8)}${r.transport.padEnd(11)}${String(r.cases).padEnd(11)}${String(r.cases_v311).padEnd(11)}${String(r.cases_v5).padEnd(11)}${String(r.crashes).padEnd(9)}${String(r.exceptions).padEnd(12)}${String(r.canary_sent).padEnd(13)}${String(r.canary_lost).padEnd(13)}${r.cases_per_s}`)
  }
  const setupFailures = mine.reduce((n, r) => n + Object.values(r.setup_failures ?? {}).reduce((a, b) => a + b, 0), 0)
  const bad = sum('crashes') + sum('canary_lost') + mine.filter((r) => r.exceptions !== 0).length
  console.log(
    `\ncases run: ${sum('cases')} of ${o.cases} (3.1.1: ${sum('cases_v311')}, v5: ${sum('cases_v5')}); crashes: ${sum('crashes')}; exceptions: ${sum('exceptions')}; ` +
      `canary sent: ${sum('canary_sent')}, lost: ${sum('canary_lost')}; sessions not set up (retried, not cases): ${setupFailures}; ${Math.round(seconds)} s (${started.toISOString()} .. ${new Date().toISOString()})`,
  )
  process.exit(code !== 0 || bad > 0 || mine.length === 0 ? 1 : 0)
})
