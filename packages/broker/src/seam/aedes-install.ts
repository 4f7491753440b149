/**
 * The seam to Aedes 2.0.0-beta.1's `broker.handle` (docs/internals.md, row A1): wrapped once per
 * broker, it runs the per-client installers in CLIENT_INSTALL_ORDER right after Aedes built the
 * Client, before it reads a byte (lib/client.js only registers its 'readable' listener in the
 * constructor). test/seam/contract.test.ts checks it.
 */
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'

/** Aedes' broker instance (aedes.js): the undocumented field this module touches */
interface HandleInternals {
  handle(stream: Duplex, req?: unknown): Client
}

/**
 * The per-client installers, in the order they run on each new Client. A delivery wrapper
 * installed later wraps the earlier ones, so it runs first on each delivery:
 * -. hooks (seam/client-hooks.ts): the parser and the writes routed through the hooks every
 *    concern registers once per broker, called with the Client (ordered by these stages too)
 * 0. aedes-fixes (seam/aedes-fixes.ts): aedes 1.2.0 fixes the 2.0 beta lacks (prototype-free maps,
 *    the inbound QoS 2 window)
 * 1. puback-hold (broker/puback-after-publish.ts): the connection's PUBACKs are held
 * 2. dedupe (cluster/dedupe.ts): the stock duplicate filter is switched off
 * 3. session-order (broker/session-order.ts): live deliveries wait for the session replay
 * 4. granted-qos (broker/conformance-qos.ts): the QoS of a delivery capped at the granted one
 * 5. conformance (broker/conformance.ts): parser checks of the 3.1.1 statements, acks in flight
 * 6. mqtt5 (broker/mqtt5.ts): what v5 clients are told and granted (CONNACK, SUBACK, $share)
 * 7. limits (limits/guard.ts): parser guards, slow-consumer limits (outermost), bounded reads
 * 8. idle (seam/idle-connection.ts): what the Client and its parser made and an idle connection
 *    does not use is dropped or shared (no delivery step: 'limits' stays outermost)
 */
export const CLIENT_INSTALL_ORDER = ['hooks', 'aedes-fixes', 'puback-hold', 'dedupe', 'session-order', 'granted-qos', 'conformance', 'mqtt5', 'limits', 'idle'] as const
export type InstallStage = (typeof CLIENT_INSTALL_ORDER)[number]
export type ClientInstaller = (client: Client, stream: Duplex) => void

interface Installers {
  byStage: Map<InstallStage, ClientInstaller>
  /** byStage in CLIENT_INSTALL_ORDER */
  ordered: ClientInstaller[]
}
const installers = new WeakMap<Aedes, Installers>()

/**
 * run `installer` on every Client `broker` makes from now on, at its place in CLIENT_INSTALL_ORDER
 * (upstream has no per-client hook before CONNECT: none found; a `client` option of Aedes would do)
 */
export function installOnEachClient(broker: Aedes, stage: InstallStage, installer: ClientInstaller): void {
  let reg = installers.get(broker)
  if (!reg) {
    const r: Installers = { byStage: new Map(), ordered: [] }
    installers.set(broker, (reg = r))
    const b = broker as unknown as HandleInternals
    // Aedes internals: broker.handle is an instance property (aedes.js constructor) that every
    // listener calls at call time; it returns the Client it made
    const handle = b.handle
    b.handle = function culexHandle(this: unknown, stream, req) {
      const client = handle.call(this, stream, req)
      for (let i = 0; i < r.ordered.length; i++) r.ordered[i]!(client, stream)
      return client
    }
  }
  if (reg.byStage.has(stage)) throw new Error(`client installer ${stage} is installed already`)
  reg.byStage.set(stage, installer)
  reg.ordered = CLIENT_INSTALL_ORDER.filter((s) => reg.byStage.has(s)).map((s) => reg.byStage.get(s)!)
}
