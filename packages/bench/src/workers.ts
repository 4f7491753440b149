/**
 * Generator threads. With --workers 1 the engine runs in the main thread;
 * with more, each worker thread runs its own engine and the main thread
 * drives them over a small request/response protocol.
 */
import { Worker } from 'node:worker_threads'
import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import { ThreadEngine, type EngineMethod } from './engine/thread-engine.js'

type Args<M extends EngineMethod> = Parameters<ThreadEngine[M]>
type Result<M extends EngineMethod> = Awaited<ReturnType<ThreadEngine[M]>>

export interface EngineHandle {
  call<M extends EngineMethod>(method: M, ...args: Args<M>): Promise<Result<M>>
  /** event loop utilisation of the engine's thread (delta against `prev` when given) */
  elu(prev?: EventLoopUtilization): EventLoopUtilization
  terminate(): Promise<void>
}

class LocalHandle implements EngineHandle {
  private readonly engine = new ThreadEngine()
  async call<M extends EngineMethod>(method: M, ...args: Args<M>): Promise<Result<M>> {
    const fn = this.engine[method] as (...a: unknown[]) => unknown
    return (await fn.apply(this.engine, args)) as Result<M>
  }
  elu(prev?: EventLoopUtilization): EventLoopUtilization {
    return prev ? performance.eventLoopUtilization(prev) : performance.eventLoopUtilization()
  }
  async terminate(): Promise<void> {
    await this.engine.close()
  }
}

interface Reply {
  id: number
  ok: boolean
  value?: unknown
  error?: string
}

class WorkerHandle implements EngineHandle {
  private readonly worker: Worker
  private seq = 0
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  private exited = false

  constructor() {
    this.worker = new Worker(new URL('./worker-entry.js', import.meta.url))
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id)
      if (!p) return
      this.pending.delete(r.id)
      if (r.ok) p.resolve(r.value)
      else p.reject(new Error(r.error ?? 'worker error'))
    })
    const failAll = (e: Error): void => {
      this.exited = true
      for (const p of this.pending.values()) p.reject(e)
      this.pending.clear()
    }
    this.worker.on('error', failAll)
    this.worker.on('exit', (code) => failAll(new Error(`generator worker exited (code ${code})`)))
  }

  call<M extends EngineMethod>(method: M, ...args: Args<M>): Promise<Result<M>> {
    if (this.exited) return Promise.reject(new Error('generator worker is gone'))
    const id = ++this.seq
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage({ id, method, args })
    })
  }

  elu(prev?: EventLoopUtilization): EventLoopUtilization {
    return prev ? this.worker.performance.eventLoopUtilization(prev) : this.worker.performance.eventLoopUtilization()
  }

  async terminate(): Promise<void> {
    if (!this.exited) {
      await this.call('close').catch(() => undefined)
      await this.worker.terminate()
    }
  }
}

/**
 * `count` generator threads (1 = the main thread, unless `fresh`: then a worker made for this run).
 * The suite asks for fresh ones: a generator on the main thread that had just driven Mosquitto
 * (its packets one per segment, the generator 90-100% busy) drove the next target's node into
 * ~1.8x its CPU per delivery (docs/performance.md "The suite's generator").
 */
export function createEngines(count: number, fresh = false): EngineHandle[] {
  if (count <= 1 && !fresh) return [new LocalHandle()]
  return Array.from({ length: count }, () => new WorkerHandle())
}

export async function terminateAll(handles: EngineHandle[]): Promise<void> {
  await Promise.all(handles.map((h) => h.terminate().catch(() => undefined)))
}
