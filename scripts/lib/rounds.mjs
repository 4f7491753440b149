// Alternating A/B rounds, for comparing two builds or two settings on a shared, noisy machine
// (ab-cost.mjs, v5-cost.mjs, bus-ab.mjs): a load swing hits both alike, so per-round ratios and
// their median are the figure.

/** one unkept run of each (warm-up), then `rounds` kept runs of each, the order swapped every round */
export function alternate(a, b, rounds, run) {
  run(a, false)
  run(b, false)
  for (let i = 0; i < rounds; i++) for (const k of i % 2 ? [b, a] : [a, b]) run(k, true)
}

export const median = (values) => {
  const s = [...values].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** a ratio as a percentage change, one decimal: 1.044 -> 4.4 */
export const pct = (ratio) => +((ratio - 1) * 100).toFixed(1)
