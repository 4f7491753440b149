// `npm run chaos`: the fault scenarios of packages/broker/test/chaos/ in their long version (60 s of
// QoS 1 load at ~2,500 msg/s each, one at a time), then bench/results/chaos.md and chaos.json, and
// (a full long run only) the table of the README's "Reliability" section.
//   npm run chaos                  every scenario, long
//   npm run chaos -- kill-node     only the files matching (vitest filters)
//   CULEX_CHAOS=short npm run chaos   the short versions (as in npm test), same report
import { spawnSync, execFileSync } from 'node:child_process'
import { cpus, hostname, totalmem } from 'node:os'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const outDir = `${root}bench/results`
const jsonl = `${outDir}/chaos.jsonl.tmp`
const vitestJson = `${outDir}/chaos.vitest.tmp`
mkdirSync(outDir, { recursive: true })
rmSync(jsonl, { force: true })

const profile = process.env.CULEX_CHAOS === 'short' ? 'short' : 'long'
const filters = process.argv.slice(2)
const started = new Date()
const run = spawnSync(
  process.execPath,
  [`${root}node_modules/vitest/vitest.mjs`, 'run', '--no-file-parallelism', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`, ...(filters.length ? filters : ['packages/broker/test/chaos/'])],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CULEX_CHAOS: profile, CULEX_CHAOS_RESULTS: jsonl } },
)

let results = []
try {
  results = readFileSync(jsonl, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
} catch {
  /* no scenario reported */
}
rmSync(jsonl, { force: true })
// pass / fail of each scenario's test, from vitest's JSON report
const verdicts = new Map()
try {
  for (const file of JSON.parse(readFileSync(vitestJson, 'utf8')).testResults) {
    for (const t of file.assertionResults) verdicts.set([...t.ancestorTitles, t.title].join(' > '), t.status)
  }
} catch {
  /* no report */
}
rmSync(vitestJson, { force: true })
const verdict = (r) => (verdicts.get(r.test) === 'passed' ? 'pass' : verdicts.has(r.test) ? `**${verdicts.get(r.test).toUpperCase()}**` : '?')

const n = (x) => x.toLocaleString('en-US')
let commit = 'unknown'
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
} catch {
  /* not a git checkout */
}
const cpu = cpus()
const machine = `${hostname()}: ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
const table = [
  '| Scenario | Result | Load held | Acknowledged | Lost | Duplicated | Out of order | Reconnect (max / median) |',
  '|---|---|---|---:|---:|---:|---:|---|',
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${verdict(r)} | ${r.held ?? `${n(r.rateHeld)} of ${n(r.rateTarget)} msg/s for ${r.seconds} s`} | ${n(r.acknowledged)} | ${n(r.lost)} | ${n(r.duplicated)}${r.stale ? ` (${n(r.stale)} stale)` : ''} | ${n(r.outOfOrder)} | ${r.reconnects ? `${n(r.reconnectMaxMs)} / ${n(r.reconnectP50Ms)} ms (${r.reconnects})` : '-'} |`,
  ),
]
const lines = [
  '# Culex fault suite (`npm run chaos`)',
  '',
  `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}, ${profile} profile, on ${machine}.`,
  'Three nodes (`culex cluster up`: redis-server with AOF, HAProxy), 5 QoS 1 publishers each paired with a persistent',
  '(`clean: false`) QoS 1 subscriber, sequence numbers in the payloads. Lost = acknowledged (PUBACK) and never delivered.',
  '',
  ...table,
  '',
  '## Per publisher',
  '',
  ...results.flatMap((r) => [
    `**${r.scenario}** (${verdict(r)}): ${r.events.join('; ')}`,
    '',
    '| Stream | Acknowledged | Delivered | Lost | Duplicated | Out of order |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.streams.map((s) => `| ${s.stream} | ${n(s.acknowledged)} | ${n(s.delivered)} | ${n(s.lost)}${s.lost ? ` (first seq ${s.lostSample.join(', ')})` : ''} | ${n(s.duplicated)} | ${n(s.outOfOrder)} |`),
    '',
  ]),
  run.status === 0 ? 'Every scenario passed.' : `The suite FAILED (vitest exit ${run.status}): see the Lost column and the test output.`,
  '',
]
writeFileSync(`${outDir}/chaos.md`, lines.join('\n'))
writeFileSync(`${outDir}/chaos.json`, `${JSON.stringify({ started: started.toISOString(), commit, profile, machine, passed: run.status === 0, results: results.map((r) => ({ ...r, result: verdicts.get(r.test) ?? 'unknown' })) }, null, 2)}\n`)
// the README's Reliability table: from a full long run only
if (profile === 'long' && filters.length === 0) {
  const readme = `${root}README.md`
  const text = readFileSync(readme, 'utf8')
  const block = [...table, '', `${started.toISOString().slice(0, 10)}, commit ${commit}, on ${machine}; per publisher: [bench/results/chaos.md](bench/results/chaos.md).`].join('\n')
  writeFileSync(readme, text.replace(/<!-- chaos-table:start -->[\s\S]*<!-- chaos-table:end -->/, `<!-- chaos-table:start -->\n${block}\n<!-- chaos-table:end -->`))
}
process.stdout.write(`\nchaos: ${results.length} scenario result(s) written to bench/results/chaos.md and chaos.json\n`)
process.exit(run.status ?? 1)
