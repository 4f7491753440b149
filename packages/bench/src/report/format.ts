/** Number formatting shared by the renderers. */
export function fmtNum(v: number | null | undefined, digits?: number): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a'
  if (digits !== undefined) return v.toFixed(digits)
  if (Number.isInteger(v)) return v.toLocaleString('en-US')
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

export function fmtBytes(v: number | null): string {
  if (v === null) return 'n/a'
  if (Math.abs(v) >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(1)} GiB`
  if (Math.abs(v) >= 1024 * 1024) return `${(v / 1024 / 1024).toFixed(1)} MiB`
  if (Math.abs(v) >= 1024) return `${(v / 1024).toFixed(1)} KiB`
  return `${v} B`
}

export const INVALID_MARK = '✗'
