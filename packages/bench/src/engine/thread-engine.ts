/** Everything one generator thread can be asked to do; the worker RPC maps onto these methods. */
import { ConnEngine } from './conn-engine.js'
import { LoadEngine } from './load-engine.js'
import type { ConnPlan, LoadFinal, LoadPlan, LoadSnapshot, RampResult, RunWindow } from './plan.js'

export class ThreadEngine {
  private load: LoadEngine | null = null
  private conns: ConnEngine | null = null

  private l(): LoadEngine {
    if (!this.load) throw new Error('load plan not set')
    return this.load
  }
  private c(): ConnEngine {
    if (!this.conns) throw new Error('connection plan not set')
    return this.conns
  }

  loadInit(plan: LoadPlan): void {
    this.load = new LoadEngine(plan)
  }
  connectSubscribers(): Promise<void> {
    return this.l().connectSubscribers()
  }
  connectPublishers(): Promise<void> {
    return this.l().connectPublishers()
  }
  sendProbes(): void {
    this.l().sendProbes()
  }
  missingProbes(): number {
    return this.l().missingProbes()
  }
  start(w: RunWindow): void {
    this.l().start(w)
  }
  snapshot(): LoadSnapshot {
    return this.l().snapshot()
  }
  stop(timeoutMs: number): Promise<void> {
    return this.l().stop(timeoutMs)
  }
  final(): LoadFinal {
    return this.l().final()
  }
  dropped(): number {
    return this.load ? this.load.dropped() : 0
  }

  connInit(plan: ConnPlan): void {
    this.conns = new ConnEngine(plan)
  }
  ramp(): Promise<RampResult> {
    return this.c().ramp()
  }
  alive(): number {
    return this.c().alive()
  }
  /** close every connection the ramp opened (DISCONNECT), e.g. after a warm-up ramp */
  connClose(): Promise<void> {
    return this.c().close()
  }

  async close(): Promise<void> {
    await Promise.all([this.load?.close(), this.conns?.close()])
  }
}

export type EngineMethod = {
  [K in keyof ThreadEngine]: ThreadEngine[K] extends (...a: any[]) => any ? K : never
}[keyof ThreadEngine]
