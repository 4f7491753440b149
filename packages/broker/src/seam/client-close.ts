/**
 * The seam to how Aedes 2.0.0-beta.1's Client learns that its socket is gone and what its close
 * makes (docs/internals.md rows C19, C20; issue 15, connects/s: both ran on every connection).
 *
 * - C19: lib/client.js constructor watches its socket with node:stream's `finished(conn,
 *   close.bind(client))` (end-of-stream: 7 closures, a bound callback, listeners on 'close',
 *   'finish', 'end' and 'error'), which row C14 (idle-connection.ts) then undoes on a plain TCP
 *   socket: the Client closes from the socket's close hooks instead. Here that watch is not made
 *   at all: `finished`, imported by name by lib/client.js, is replaced once per process
 *   (`module.syncBuiltinESMExports()`, as row P9 does for `pipeline`) by a function that, called
 *   with Aedes' bound close for a TCP socket of a broker whose clients C14 lightens, and whose
 *   first 'close' listener is the close hooks, returns NO_WATCH and watches nothing. C14 then puts
 *   the close hook in (the same place as before, in the same turn). Any other call, and every
 *   call on a Node whose builtin bindings do not follow, is Node's own `finished`.
 * - C20: lib/client.js `close` makes `new Error('connection closed')` for the drain callbacks
 *   still pending, on every close, also when there are none; its stack trace (captured at `new`)
 *   was ~2-6 µs of a connection's CPU. When nothing waits for a drain the Error is made with
 *   `Error.stackTraceLimit` 0: set right before `close`, restored by the Client's `_eos` (its
 *   end-of-stream cleanup, C14's no-op by then), which `close` calls right after making the Error,
 *   before any listener or callback runs; and in any case when `close` returns or throws.
 */
import { Socket } from 'node:net'
import type { Aedes } from 'aedes'
import { closeHooksFirst } from '../listeners/close-hooks.js'
import { replaceStreamExport } from './stream-export.js'

/** what lib/client.js keeps as `_eos` when C19 made no end-of-stream watch */
export function NO_WATCH(): void {}

/** brokers whose plain TCP clients are closed from their sockets' close hooks (idle-connection.ts) */
const closedByHooks = new WeakSet<object>()
let installed = false

/** Aedes' Client as `finished` sees its socket: lib/client.js sets `conn.client` before it calls `finished` */
interface WatchedConn {
  client?: { broker?: object; conn?: unknown; _eos?: unknown }
}

/** C19: from now on the TCP clients of `broker` get no end-of-stream watch (idle-connection.ts closes them from the close hooks) */
export function skipEndOfStreamWatch(broker: Aedes): void {
  closedByHooks.add(broker)
  if (installed) return
  installed = true
  replaceStreamExport('finished', (original) => function finished(this: unknown, ...args: unknown[]): unknown {
    const [conn, cb] = args as [WatchedConn & Socket, { name?: string }]
    if (args.length === 2 && typeof cb === 'function' && cb.name === 'bound close' && conn instanceof Socket) {
      const client = conn.client
      // the Client being built (no `_eos` yet) of a broker whose clients C14 lightens
      if (client && client.conn === conn && client._eos === undefined && closedByHooks.has(client.broker as object) && !conn.closed && closeHooksFirst(conn)) return NO_WATCH
    }
    return original.apply(this, args)
  })
}

/** the Client fields `closeClient` reads (lib/client.js) */
interface Closable {
  closed: boolean
  _pendingDrains?: unknown[]
  _eos: () => void
  close(): void
}

let savedLimit: number | undefined
/** C20: the Client's `_eos` while it closes (it was NO_WATCH, a no-op): puts the stack trace limit back */
function restoreLimit(): void {
  if (savedLimit === undefined) return
  Error.stackTraceLimit = savedLimit
  savedLimit = undefined
}

/**
 * C20: `client.close()`; when no drain callback waits and the Client has no end-of-stream watch
 * (C14/C19: `_eos` is NO_WATCH), its 'connection closed' Error is made without a stack trace
 */
export function closeClient(client: Closable): void {
  if (client.closed || client._eos !== NO_WATCH || client._pendingDrains?.length !== 0) return client.close()
  savedLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  client._eos = restoreLimit
  try {
    client.close()
  } finally {
    restoreLimit()
  }
}
