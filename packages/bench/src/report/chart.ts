/** A self-contained SVG bar chart of the suite's headline figures, one panel per figure. */
import { buildMatrix } from './matrix.js'
import { INVALID_MARK } from './format.js'
import type { SuiteReport } from './types.js'

const COLORS = ['#6b7280', '#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626']
const W = 820
const LABEL_W = 190
const BAR_H = 20
const GAP = 6
const PANEL_TOP = 28

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

export function renderChart(s: SuiteReport): string {
  const rows = buildMatrix(s).filter((r) => r.chart)
  const names = s.targets.map((t) => t.name)
  const panelH = PANEL_TOP + names.length * (BAR_H + GAP) + 14
  const height = 60 + rows.length * panelH + 30
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fecaca"/><line x1="0" y1="0" x2="0" y2="6" stroke="#dc2626" stroke-width="2"/></pattern></defs>',
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">${xml(`culex-bench suite ${s.started_at}`)}</text>`,
    `<text x="12" y="42" fill="#555">${xml(`${s.machine.nproc} × ${s.machine.cpu_model}; QoS ${s.config.qos.join(',')}, ${s.config.size_bytes} B, ${s.config.duration_s} s per scenario. Hatched red = invalid (${INVALID_MARK}).`)}</text>`,
  ]
  rows.forEach((row, ri) => {
    const y0 = 60 + ri * panelH
    const better = row.higherIsBetter === true ? 'higher is better' : row.higherIsBetter === false ? 'lower is better' : ''
    parts.push(`<text x="12" y="${y0 + 18}" font-weight="bold">${xml(`${row.run}: ${row.metric}${row.unit ? ` (${row.unit})` : ''}`)}</text>`)
    parts.push(`<text x="${W - 12}" y="${y0 + 18}" text-anchor="end" fill="#777">${xml(better)}</text>`)
    const max = Math.max(0, ...row.cells.map((c) => c.value ?? 0))
    row.cells.forEach((c, i) => {
      const y = y0 + PANEL_TOP + i * (BAR_H + GAP)
      parts.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H - 6}" text-anchor="end">${xml(names[i] ?? '')}</text>`)
      const span = W - LABEL_W - 190
      const w = c.value !== null && max > 0 ? Math.max(1, (c.value / max) * span) : 0
      if (w > 0) {
        const fill = c.invalid ? 'url(#hatch)' : (COLORS[i % COLORS.length] as string)
        parts.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${fill}" rx="2"/>`)
      }
      const ratio = c.ratio !== null ? ` (${c.ratio.toFixed(2)}×)` : ''
      const label = `${c.invalid ? `${INVALID_MARK} ` : ''}${c.text}${ratio}${c.flag ? ` ${c.flag}` : ''}${c.invalid ? ' invalid' : ''}`
      parts.push(
        `<text x="${LABEL_W + w + 6}" y="${y + BAR_H - 6}"${c.invalid ? ' fill="#dc2626"' : ''}>${xml(label)}${c.reason ? `<title>${xml(c.reason)}</title>` : ''}</text>`,
      )
    })
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
