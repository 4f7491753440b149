/**
 * Containment: an exception in the handling of one client closes that
 * client, never the process. It is logged once per client (warn, with the
 * client id and where it happened) and counted in
 * culex_client_errors_total{reason="exception"}.
 *
 * Client-driven code runs from a few entry points, and each is guarded here
 * (a try/catch around a call that already exists, nothing per message):
 * - the parser (bytes read from the socket -> 'packet' -> Aedes' handlers,
 *   synchronously), set once per broker by limits/guard.ts (seam/client-hooks.ts);
 * - Aedes' 'connected' listener that handles the packets queued before
 *   CONNACK (limits/guard.ts);
 * - deliveries handed to a subscriber by the emitter (limits/guard.ts);
 * - the Aedes hooks (preConnect, authenticate, authorize*, published),
 *   called back from the emitter and persistence (`isolateHooks`, applied in
 *   broker/create.ts).
 * Continuations Aedes runs from persistence promises carry only values the
 * packet checks (limits/packet-check.ts) have bounded. What still escapes
 * reaches the last-resort handler (commands/start.ts), which logs and exits:
 * after an exception outside these entry points the process state is unknown.
 */
import type { AedesOptions } from 'aedes'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'

/** the parts of Aedes' Client (lib/client.js) a fault touches */
export interface FaultyClient {
  id?: string | null
  conn?: { destroy(err?: Error): void; destroyed?: boolean }
}

export class ClientFaults {
  private readonly seen = new WeakSet<object>()

  constructor(
    private readonly counters: HotCounters,
    private readonly log: Logger,
  ) {}

  /** `err` escaped the handling of `client` at `where`: close the client (once logged and counted) */
  fault(client: FaultyClient | null | undefined, err: unknown, where: string): void {
    const e = err instanceof Error ? err : new Error(String(err))
    if (!client) {
      // a broker-internal publish (a will, $SYS) has no client to close: log it, the process carries on
      this.counters.clientErrors.exception++
      this.log.warn({ where, err: e.message, stack: e.stack }, 'exception in broker handling without a client')
      return
    }
    if (!this.seen.has(client)) {
      this.seen.add(client)
      this.counters.clientErrors.exception++
      this.log.warn({ client: client.id ?? null, where, err: e.message, stack: e.stack }, 'exception while handling a client: closing its connection')
    }
    try {
      // Aedes' stream-finished handler then closes the Client (lib/client.js close)
      if (client.conn && !client.conn.destroyed) client.conn.destroy()
    } catch {
      // a conn that cannot even be destroyed: nothing more to do for it
    }
  }

  /** `fn` with a throw turned into fault(client) */
  guard<A extends unknown[], R>(client: FaultyClient, where: string, fn: (...args: A) => R, fallback: R): (...args: A) => R {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const faults = this
    return function (this: unknown, ...args: A): R {
      try {
        return fn.apply(this, args)
      } catch (err) {
        faults.fault(client, err, where)
        return fallback
      }
    }
  }
}

type Cb = (...args: never[]) => void

/**
 * `hook(client, ..., callback)` guarded: a throw faults the client and, when
 * the hook had not called back yet, calls back with `failure` so Aedes' flow
 * for that client ends. Cost per call: the callback wrapper (one closure).
 */
function guardCallbackHook<H extends (...args: never[]) => void>(hook: H, faults: ClientFaults, name: string, clientAt: number, failure: () => unknown[]): H {
  return function (this: unknown, ...args: unknown[]) {
    const last = args.length - 1
    const cb = args[last] as Cb
    let called = false
    args[last] = (...a: never[]) => {
      called = true
      cb(...a)
    }
    try {
      hook.apply(this, args as never)
    } catch (err) {
      faults.fault(args[clientAt] as FaultyClient, err, name)
      // a hook may throw after it called back (or the callback itself threw): never call back twice
      if (!called) {
        called = true
        cb(...(failure() as never[]))
      }
    }
  } as unknown as H
}

/** the hooks of `opts` guarded so that a throw closes the client concerned, not the process */
export function isolateHooks(opts: AedesOptions, faults: ClientFaults): AedesOptions {
  const out: AedesOptions = { ...opts }
  const fail = (name: string) => () => [new Error(`${name} failed`), false]
  if (opts.preConnect) out.preConnect = guardCallbackHook(opts.preConnect, faults, 'preConnect', 0, fail('preConnect'))
  if (opts.authenticate) out.authenticate = guardCallbackHook(opts.authenticate, faults, 'authenticate', 0, fail('authenticate'))
  if (opts.authorizePublish) out.authorizePublish = guardCallbackHook(opts.authorizePublish, faults, 'authorizePublish', 0, () => [new Error('authorizePublish failed')])
  if (opts.authorizeSubscribe) out.authorizeSubscribe = guardCallbackHook(opts.authorizeSubscribe, faults, 'authorizeSubscribe', 0, () => [new Error('authorizeSubscribe failed'), null])
  // published runs after delivery: the publish itself is done, so it completes without error (the client is closed)
  if (opts.published) out.published = guardCallbackHook(opts.published, faults, 'published', 1, () => [])
  const forward = opts.authorizeForward
  if (forward) {
    out.authorizeForward = function (this: unknown, client, packet) {
      try {
        return forward.call(this, client, packet)
      } catch (err) {
        faults.fault(client as unknown as FaultyClient, err, 'authorizeForward')
        return null
      }
    }
  }
  return out
}
