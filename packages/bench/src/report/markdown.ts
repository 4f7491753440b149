/** The Markdown report of a suite run. */
import { buildMatrix, runKey } from './matrix.js'
import { cellText, suiteFootnotes } from './table.js'
import { fmtBytes } from './format.js'
import type { SuiteReport } from './types.js'

const esc = (s: string): string => s.replace(/\|/g, '\\|')

export function markdownTable(s: SuiteReport): string {
  const rows = buildMatrix(s)
  const head = ['run', 'figure', ...s.targets.map((t) => t.name)]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`]
  for (const r of rows) {
    const fig = r.unit ? `${r.metric} (${r.unit})` : r.metric
    lines.push(`| ${[r.run, fig, ...r.cells.map((c) => cellText(c))].map(esc).join(' | ')} |`)
  }
  return lines.join('\n')
}

export function renderMarkdown(s: SuiteReport, chartFile: string | null): string {
  const m = s.machine
  const out: string[] = [
    `# culex-bench suite, ${s.started_at}`,
    '',
    `Machine: ${m.nproc} CPU(s), ${m.cpu_model}, ${fmtBytes(m.ram_bytes)} RAM, ${m.os}, Node ${m.node}.`,
    `Load average (1/5/15 min) at start ${s.load_average.start.join(' / ')}, at end ${s.load_average.end.join(' / ')}; on ${m.nproc} CPUs anything else running skews the figures.`,
    `Settings: QoS ${s.config.qos.join(', ')}; payload ${s.config.size_bytes} B; ${s.config.duration_s} s measured after ${s.config.warmup_s} s warmup per scenario; ${s.config.workers} generator thread(s). The load generator runs on the same machine as the brokers.`,
    '',
    '## Targets',
    '',
  ]
  for (const t of s.targets) {
    const state = t.status === 'ok' ? '' : ` — **${t.status}**: ${t.reason}`
    out.push(`- **${t.name}**: ${t.description}${state}`)
  }
  out.push('', '## Results', '', markdownTable(s), '')
  for (const n of suiteFootnotes(s)) out.push(`- ${esc(n)}`)
  if (chartFile) out.push('', `![suite chart](${chartFile})`)
  const warnings = s.targets.flatMap((t) => t.runs.flatMap((r) => r.warnings.map((w) => `${t.name} ${runKey(r)}: ${w}`)))
  if (warnings.length) out.push('', '## Warnings', '', ...warnings.map((w) => `- ${esc(w)}`))
  out.push('')
  return out.join('\n')
}
