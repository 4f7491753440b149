#!/usr/bin/env node
// The spread of several `culex-bench suite` runs as one Markdown table: each cell is the lowest and
// highest value of the runs (with the range of its ratio to the first target), ✗ when any run's
// figure was invalid. Usage: node scripts/bench-spread.mjs bench/results/a.json b.json c.json
import { readFileSync } from 'node:fs'
import { buildMatrix } from '../packages/bench/dist/report/matrix.js'

const files = process.argv.slice(2)
if (files.length === 0) {
  console.error('usage: node scripts/bench-spread.mjs SUITE.json [SUITE.json ...]')
  process.exit(2)
}
const suites = files.map((f) => JSON.parse(readFileSync(f, 'utf8')))
const matrices = suites.map((s) => buildMatrix(s))
const targets = suites[0].targets.map((t) => t.name)
const key = (row) => `${row.run}|${row.metric}`
const byKey = matrices.map((m) => new Map(m.map((row) => [key(row), row])))

const ratioText = (rs) => {
  const xs = rs.filter((r) => r !== null && Number.isFinite(r))
  if (xs.length === 0) return ''
  const lo = Math.min(...xs).toFixed(2)
  const hi = Math.max(...xs).toFixed(2)
  return lo === hi ? ` (${lo}×)` : ` (${lo}–${hi}×)`
}

// a generator thread over 90% busy in any run (report/matrix.ts generatorFlag): the busiest shares
const flagText = (cells) => {
  const busy = cells.map((c) => /⚠gen (\d+)%/.exec(c.flag ?? '')?.[1]).filter(Boolean).map(Number)
  if (busy.length === 0) return ''
  const lo = Math.min(...busy)
  const hi = Math.max(...busy)
  return ` ⚠gen ${lo === hi ? lo : `${lo}–${hi}`}%${busy.length < cells.length ? ` in ${busy.length} of ${cells.length} runs` : ''}`
}

const lines = [`| run | figure | ${targets.join(' | ')} |`, `| --- | --- |${targets.map(() => ' ---: |').join('')}`]
for (const row of matrices[0]) {
  const cells = targets.map((_, i) => {
    const got = byKey.map((m) => m.get(key(row))?.cells[i]).filter(Boolean)
    if (got.length === 0) return 'n/a'
    const bad = got.some((c) => c.invalid) ? '✗ ' : ''
    const numeric = got.filter((c) => typeof c.value === 'number')
    if (numeric.length !== got.length || numeric.length === 0) {
      const texts = [...new Set(got.map((c) => c.text))]
      return bad + texts.join(' / ')
    }
    const lo = numeric.reduce((a, c) => (c.value < a.value ? c : a))
    const hi = numeric.reduce((a, c) => (c.value > a.value ? c : a))
    const strip = (t) => t.replace(/^✗\s*/, '').replace(/\s*\([0-9.]+×\)$/, '')
    const range = lo.text === hi.text || strip(lo.text) === strip(hi.text) ? strip(lo.text) : `${strip(lo.text)} – ${strip(hi.text)}`
    return bad + range + (i === 0 ? '' : ratioText(got.map((c) => c.ratio))) + flagText(got)
  })
  lines.push(`| ${row.run} | ${row.metric}${row.unit ? ` (${row.unit})` : ''} | ${cells.join(' | ')} |`)
}
console.log(lines.join('\n'))
console.log(`\n${files.length} runs: ${suites.map((s) => `${s.started_at} (load ${s.load_average?.start?.[0] ?? '?'} → ${s.load_average?.end?.[0] ?? '?'})`).join('; ')}`)
