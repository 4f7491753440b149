/**
 * One place that sees every packet Aedes writes to a connection, for the
 * conformance fixes that must know what went out (conformance-acks.ts: the QoS
 * of each message id in flight) or must correct a packet before it leaves
 * (conformance-session.ts: CONNACK's Session Present flag).
 *
 * How: Aedes writes every packet through mqtt-packet's `writeToStream`, looked
 * up at call time (aedes lib/write.js); the wrapper calls the hook registered
 * for the connection (a WeakMap keyed by stream) and then the previous
 * writeToStream (which may itself be a wrapper, e.g. puback-after-publish.ts).
 * Cost: one WeakMap lookup per packet written.
 */
import mqttPacket from 'mqtt-packet'

export interface OutPacket {
  cmd: string
  topic?: string
  messageId?: number
  qos?: number
  returnCode?: number
  sessionPresent?: boolean
}
type Stream = NodeJS.WritableStream
type WriteToStream = (packet: OutPacket, stream: Stream, opts?: unknown) => boolean
export type WriteHook = (packet: OutPacket) => void

const hooks = new WeakMap<Stream, WriteHook[]>()
// reaches into mqtt-packet's module object: Aedes' write.js reads `writeToStream` from it at call time
const mp = mqttPacket as unknown as { writeToStream: WriteToStream }
let installed = false

function install(): void {
  if (installed) return
  installed = true
  const previous = mp.writeToStream
  const wrapped = ((packet, stream, opts) => {
    const list = hooks.get(stream)
    if (list) for (const hook of list) hook(packet)
    return previous(packet, stream, opts)
  }) as WriteToStream
  // keep the function's own settings (mqtt.js sets writeToStream.cacheNumbers)
  Object.defineProperty(wrapped, 'cacheNumbers', {
    get: () => (previous as unknown as { cacheNumbers: boolean }).cacheNumbers,
    set: (v: boolean) => ((previous as unknown as { cacheNumbers: boolean }).cacheNumbers = v),
  })
  mp.writeToStream = wrapped
}

/** call `hook` with every packet Aedes writes to `stream`, before it is encoded */
export function onWrite(stream: Stream, hook: WriteHook): void {
  install()
  const list = hooks.get(stream)
  if (list) list.push(hook)
  else hooks.set(stream, [hook])
}
