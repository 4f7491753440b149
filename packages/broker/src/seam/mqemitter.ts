/**
 * The seam to mqemitter 7 (docs/internals.md, rows E*): its matcher and its `closed` flag,
 * neither documented. test/seam/contract.test.ts checks both.
 */
import MQEmitter from 'mqemitter'

type Done = (err?: Error | null) => void
export type Listener = (message: unknown, cb: Done) => void

/** mqemitter's public API, as the cluster bus uses it */
export interface LocalEmitter {
  emit(message: unknown, cb?: Done): unknown
  on(topic: string, notify: unknown, done?: () => void): unknown
  removeListener(topic: string, notify: unknown, done?: () => void): unknown
  close(cb: () => void): unknown
}
interface EmitterInternals extends LocalEmitter {
  closed: boolean
  _matcher: { match(topic: string): Listener[] }
}

export interface MatchingEmitter {
  emitter: LocalEmitter
  /** the listeners whose filter matches `topic` (mqemitter's qlobber, `_matcher`), without its queue */
  listenersFor(topic: string): Listener[]
  /** close() was called (mqemitter's `closed`) */
  closed(): boolean
}

export function createMatchingEmitter(opts: { concurrency: number; matchEmptyLevels: boolean }): MatchingEmitter {
  const emitter = new (MQEmitter as unknown as new (o: object) => EmitterInternals)(opts)
  const matcher = emitter._matcher
  return {
    emitter,
    listenersFor: (topic) => matcher.match(topic),
    closed: () => emitter.closed,
  }
}
