/** What /readyz answers: listeners up, not draining, and every dependency healthy. */
export class Readiness {
  listening = false
  draining = false
  private readonly checks = new Map<string, () => boolean>()

  /** register a named dependency check, e.g. "redis" */
  add(name: string, check: () => boolean): void {
    this.checks.set(name, check)
  }

  status(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = []
    if (!this.listening) reasons.push('starting')
    if (this.draining) reasons.push('draining')
    for (const [name, check] of this.checks) if (!check()) reasons.push(`${name} unavailable`)
    return { ready: reasons.length === 0, reasons }
  }
}
