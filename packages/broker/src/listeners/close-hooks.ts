/**
 * The 'close' of a connection's stream for the node's own concerns (the socket tracker, the
 * connection cap, the delivery guard): one shared listener per stream and the concerns' functions
 * in an array of exactly their number, instead of one listener each. A third listener on an event
 * makes Node's listener array grow to 19 slots (~176 B), a once() wrapper costs ~130 B more
 * (issue 15, docs/performance.md). 'close' is emitted once; the functions run in the order added,
 * as listeners would.
 */
type Stream = { on(event: 'close', fn: (this: never) => void): unknown; listeners?(event: 'close'): unknown[] }
export type CloseHook = (stream: never) => void

const HOOKS = Symbol('culex.closeHooks')
type Hooked = Stream & { [HOOKS]?: CloseHook | CloseHook[] }

/** call `hook(stream)` when `stream` emits 'close' (`hook` should be one function shared by every stream) */
export function onStreamClose<S extends Stream>(stream: S, hook: (stream: S) => void): void {
  const s = stream as unknown as Hooked
  const h = s[HOOKS]
  if (h === undefined) {
    s[HOOKS] = hook as CloseHook
    s.on('close', runCloseHooks)
  } else s[HOOKS] = typeof h === 'function' ? [h, hook as CloseHook] : h.concat(hook as CloseHook) // concat: no spare capacity
}

function runCloseHooks(this: Hooked): void {
  const h = this[HOOKS]!
  if (typeof h === 'function') return h(this as never)
  for (const fn of h) fn(this as never)
}

/** the close hooks are the first 'close' listener of `stream` (they run before any listener added later) */
export function closeHooksFirst(stream: Stream): boolean {
  return stream.listeners?.('close')[0] === runCloseHooks
}
