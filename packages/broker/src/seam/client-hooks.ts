/**
 * Hooks on every connection of a broker, registered once per broker instead of installed per
 * client (issue 15: an idle connection held ~40 closures, one per wrapper and client). Each hook
 * is a function of the broker's, called with the Client: the parser's packets and errors
 * (seam/mqtt-parser.ts ParserHooks) and the packets Aedes writes (writeToStream, row M1). A
 * concern keeps its per-client state where it needs it (made on first use, mostly nothing for
 * an idle connection).
 *
 * The deliveries too: each client gets one pair of delivery functions (client.deliverQoS /
 * deliver0, row C2) that runs the broker's delivery steps, then Aedes' own, as copied by
 * aedes-deliver.ts (row C13: written in the turn they are delivered).
 *
 * Order, as the per-client wrappers had it (a wrapper installed later ran first on the way in):
 * packet and parse-error hooks and delivery steps run from the last stage of
 * CLIENT_INSTALL_ORDER to the first (within a stage, the last registered first); write hooks and
 * parser 'error' observers in CLIENT_INSTALL_ORDER (within a stage, as registered).
 */
import type { Aedes, Client } from 'aedes'
import { CLIENT_INSTALL_ORDER, installOnEachClient, type InstallStage } from './aedes-install.js'
import { parserOf, setDelivery, type DeliveredPacket, type Delivery, type Done } from './aedes-client.js'
import { deliverQoS0InTurn, deliverQoSInTurn, subackWritten, subscribeHandled } from './aedes-deliver.js'
import { HooksByCmd } from './hooks-by-cmd.js'
import { hookParser, ParserHooks, type PacketAround, type PacketHook } from './mqtt-parser.js'
import { hookWrites, type OutPacket } from './mqtt-writes.js'
import { parsersWithReadBuffer } from './mqtt-read-buffer.js'

/**
 * a step of every client's deliveries, before Aedes' own: false passes the delivery on to the next
 * step; true = the step took it (it calls `cb`, or passes it on later with continueDelivery)
 */
export type DeliveryStep = (packet: DeliveredPacket, cb: Done, client: Client) => boolean
type Kind = keyof Delivery

interface Registry {
  parser: ParserHooks<Client>
  writes: Array<(packet: OutPacket, client: Client) => void>
  /** `writes` by packet type */
  writesByCmd: HooksByCmd<(packet: OutPacket, client: Client) => void>
  deliver0: DeliveryStep[]
  deliverQoS: DeliveryStep[]
  /** the stage index of each entry of the lists above */
  stages: Map<unknown[], number[]>
}
const registries = new WeakMap<Aedes, Registry>()

function registryOf(broker: Aedes): Registry {
  let reg = registries.get(broker)
  if (!reg) {
    const writes: Registry['writes'] = []
    const r: Registry = { parser: new ParserHooks<Client>(), writes, writesByCmd: new HooksByCmd(writes), deliver0: [], deliverQoS: [], stages: new Map() }
    registries.set(broker, (reg = r))
    // Aedes' parsers read through a ReadBuffer from construction, no bl made (mqtt-read-buffer.ts, row M14)
    parsersWithReadBuffer()
    // deliveries written in the turn wait for a SUBSCRIBE's SUBACK (aedes-deliver.ts, row C13):
    // the SUBSCRIBE counted last of the packet hooks (right before Aedes), the SUBACK as written
    insert(r, r.parser.packet, 'hooks', subscribeHandled as PacketHook<Client>, true)
    r.parser.seeOnly(subscribeHandled as PacketHook<Client>, ['subscribe'])
    insert(r, r.writes, 'hooks', subackWritten, false)
    r.writesByCmd.seeOnly(subackWritten, ['suback'])
    // first on each Client (stage 'hooks'), before it reads a byte
    installOnEachClient(broker, 'hooks', (client, stream) => {
      hookParser(parserOf(client), r.parser)
      hookWrites(stream, r.writesByCmd, client)
      if (r.deliver0.length > 0 || r.deliverQoS.length > 0) routeDeliveries(client, r)
    })
  }
  return reg
}

/** put `entry` into `list` at its stage's place: `lastFirst` = later stages (and later entries of a stage) first */
function insert<T>(reg: Registry, list: T[], stage: InstallStage, entry: T, lastFirst: boolean): void {
  const s = CLIENT_INSTALL_ORDER.indexOf(stage)
  let stages = reg.stages.get(list)
  if (!stages) reg.stages.set(list, (stages = []))
  let i = 0
  if (lastFirst) while (i < stages.length && stages[i]! > s) i++
  else while (i < stages.length && stages[i]! <= s) i++
  list.splice(i, 0, entry)
  stages.splice(i, 0, s)
}

/**
 * `intercept` sees each packet of every client before Aedes: undefined passes it on, false drops
 * it, an Error closes the connection (the parser's 'error'). `cmds`: it sees only packets of these
 * types (for an intercept that does nothing with the others: it is then not called for them)
 */
export function interceptPacketsOfEachClient<P>(broker: Aedes, stage: InstallStage, intercept: (packet: P, client: Client) => Error | false | undefined, cmds?: readonly string[]): void {
  const reg = registryOf(broker)
  insert(reg, reg.parser.packet, stage, intercept as PacketHook<Client>, true)
  if (cmds) reg.parser.seeOnly(intercept as PacketHook<Client>, cmds)
}

/** `around.before` true: the rest of the hooks and Aedes' handler (synchronous) run, then `around.after`; `cmds` as for interceptPacketsOfEachClient */
export function aroundPacketsOfEachClient<P>(broker: Aedes, stage: InstallStage, around: { before(packet: P, client: Client): boolean; after(packet: P, client: Client): void }, cmds?: readonly string[]): void {
  const reg = registryOf(broker)
  insert(reg, reg.parser.packet, stage, around as unknown as PacketAround<Client>, true)
  if (cmds) reg.parser.seeOnly(around as unknown as PacketAround<Client>, cmds)
}

/** `intercept` sees each error a client's parser raises; true = handled, not emitted */
export function interceptParseErrorsOfEachClient(broker: Aedes, stage: InstallStage, intercept: (err: Error, client: Client) => boolean): void {
  const reg = registryOf(broker)
  insert(reg, reg.parser.parseError, stage, intercept, true)
}

/** `fn` sees each 'error' a client's parser emits (Aedes then closes the client) */
export function onParserErrorOfEachClient(broker: Aedes, stage: InstallStage, fn: (err: Error, client: Client) => void): void {
  const reg = registryOf(broker)
  insert(reg, reg.parser.errorEvent, stage, fn, false)
}

/** `hook` sees each packet Aedes writes to a client, before it is encoded (it may change it); `cmds`: only packets of these types (for a hook that does nothing with the others) */
export function onWriteOfEachClient(broker: Aedes, stage: InstallStage, hook: (packet: OutPacket, client: Client) => void, cmds?: readonly string[]): void {
  const reg = registryOf(broker)
  insert(reg, reg.writes, stage, hook, false)
  if (cmds) reg.writesByCmd.seeOnly(hook, cmds)
}

/** the parser settings every client of `broker` gets (max packet size, UTF-8, the check of each packet, parse faults) */
export function parserHooksOf(broker: Aedes): Pick<ParserHooks<Client>, 'maxPacketSize' | 'strictUtf8' | 'check' | 'parseFault'> {
  return registryOf(broker).parser
}

// ---- deliveries ----------------------------------------------------------------------------

/** the Client's delivery functions run the steps, then Aedes' own; subscriptions capture them when made (two closures over the client and the registry: no record per client) */
function routeDeliveries(client: Client, reg: Registry): void {
  setDelivery(client, {
    deliver0: (packet, cb) => runSteps(client, reg, 'deliver0', 0, packet, cb),
    deliverQoS: (packet, cb) => runSteps(client, reg, 'deliverQoS', 0, packet, cb),
  })
}

function runSteps(client: Client, reg: Registry, kind: Kind, from: number, packet: DeliveredPacket, cb: Done): void {
  const steps = reg[kind]
  for (let i = from; i < steps.length; i++) if (steps[i]!(packet, cb, client)) return
  // Aedes' own, written in this turn (aedes-deliver.ts, row C13)
  if (kind === 'deliverQoS') deliverQoSInTurn(client, packet, cb)
  else deliverQoS0InTurn(client, packet, cb)
}

/** `step` sees each delivery of every client (deliverQoS: QoS 1/2, and QoS 0 through it; deliver0: QoS 0 subscriptions) */
export function stepDeliveriesOfEachClient(broker: Aedes, stage: InstallStage, kind: Kind, step: DeliveryStep): void {
  const reg = registryOf(broker)
  insert(reg, reg[kind], stage, step, true)
}

/** pass a delivery a step of `stage` took on to the steps after it (and Aedes') */
export function continueDelivery(client: Client, stage: InstallStage, kind: Kind, packet: DeliveredPacket, cb: Done): void {
  // the Client's broker (lib/client.js constructor: `this.broker`), whose registry routed its deliveries
  const reg = registries.get((client as unknown as { broker: Aedes }).broker)!
  const stages = reg.stages.get(reg[kind])!
  const s = CLIENT_INSTALL_ORDER.indexOf(stage)
  let i = 0
  while (i < stages.length && stages[i]! >= s) i++
  runSteps(client, reg, kind, i, packet, cb)
}
