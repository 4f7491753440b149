/**
 * Idle connections for the `connections` scenario. Connection g (global
 * index) uses loopback source address number g % sourceAddresses (so one
 * address never runs out of ephemeral ports, and per-address connect limits
 * of a broker are spread); a connect that still fails with EADDRNOTAVAIL moves
 * on to the next unused source address.
 */
import { RawClient } from '../client/raw-client.js'
import { createHistogram, encodeHistogram, recordMicros } from '../histogram.js'
import { isLoopback, parseTarget, roundRobin } from '../targets.js'
import { mapLimit } from './limit.js'
import type { ConnPlan, RampResult } from './plan.js'

/** The n-th loopback source address: 127.0.0.1, 127.0.0.2, ... 127.0.0.254, 127.0.1.1, ... */
export function sourceAddress(n: number): string {
  return `127.0.${Math.floor(n / 254)}.${(n % 254) + 1}`
}

export class ConnEngine {
  private clients: RawClient[] = []
  private bump = 0
  private readonly used = new Set<string>()

  constructor(private readonly plan: ConnPlan) {}

  async ramp(): Promise<RampResult> {
    const p = this.plan
    const hist = createHistogram()
    const errors: Record<string, number> = {}
    const indices = Array.from({ length: p.count }, (_, k) => p.offset + k * p.stride)
    const results = await mapLimit(indices, p.concurrency, async (g) => {
      const url = roundRobin(p.urls, g)
      const host = parseTarget(url).host
      const loopback = isLoopback(host) && host.startsWith('127.')
      for (let attempt = 0; ; attempt++) {
        const spread = p.sourceAddresses > 1
        // after EADDRNOTAVAIL: fresh addresses past the planned ones
        const addrIndex = this.bump > 0 ? p.sourceAddresses - 1 + this.bump : spread ? g % p.sourceAddresses : 0
        const localAddress = loopback && (spread || addrIndex > 0) ? sourceAddress(addrIndex) : undefined
        const t0 = process.hrtime.bigint()
        try {
          const c = await RawClient.connect({
            url,
            clientId: `${p.clientPrefix}${g}`,
            keepaliveS: p.keepaliveS,
            protocol: p.protocol ?? 4,
            connectTimeoutMs: p.connectTimeoutMs,
            ...(localAddress ? { localAddress } : {}),
            ...(p.username !== undefined ? { username: p.username } : {}),
            ...(p.password !== undefined ? { password: p.password } : {}),
            ...(p.ca ? { ca: p.ca } : {}),
            ...(p.insecure ? { insecure: true } : {}),
          })
          recordMicros(hist, Number(process.hrtime.bigint() - t0) / 1000)
          this.used.add(localAddress ?? 'auto')
          this.clients.push(c)
          return
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if (loopback && (code === 'EADDRNOTAVAIL' || code === 'EADDRINUSE') && attempt < 3) {
            this.bump++
            continue
          }
          throw e
        }
      }
    })
    let failed = 0
    for (const r of results) {
      if (r.ok) continue
      failed++
      const key = (r.error as NodeJS.ErrnoException).code ?? r.error.message.slice(0, 80)
      errors[key] = (errors[key] ?? 0) + 1
    }
    return {
      connected: this.clients.length,
      failed,
      errors,
      histogram: encodeHistogram(hist),
      sourceAddresses: [...this.used].sort(),
    }
  }

  alive(): number {
    return this.clients.filter((c) => !c.closed).length
  }

  async close(): Promise<void> {
    await mapLimit(this.clients, 500, (c) => c.close())
    this.clients = []
  }
}
