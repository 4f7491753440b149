/**
 * The seam to mqtt-packet 9's `debug` loggers (docs/internals.md, row M10): they are made
 * no-ops before mqtt-packet loads, and this module loads it. The only module that requires
 * mqtt-packet at run time (mqtt-writes.ts takes the module object from here);
 * test/seam/contract-parser.test.ts checks it.
 *
 * main.ts imports this module first, so that mqtt-packet loads here, after its loggers are off.
 */
import { createRequire } from 'node:module'
import type MqttPacket from 'mqtt-packet'

const require = createRequire(import.meta.url)
const DEBUG_PREFIX = 'mqtt-packet:'
const silenced: string[] = []
let debugState: 'off' | 'on (DEBUG)' | 'loaded before the seam' = 'off'

/**
 * mqtt-packet 9 calls its `debug` loggers about 15 times per packet parsed or written, each a
 * call with its arguments and the debug package's `enabled` getter, enabled or not (issue 15:
 * 6-9% of a node's CPU). parser.js and writeToStream.js make them once, at load
 * (`require('debug')('mqtt-packet:parser')`, module constants), so they can only be dropped
 * before mqtt-packet loads: the `debug` module it resolves is replaced in Node's require cache by
 * a proxy that hands out a no-op for mqtt-packet's namespaces that DEBUG does not enable (any
 * other caller gets the real logger). No upstream issue found (mqtt-packet could drop its debug
 * calls from the per-packet path).
 */
function silenceDebug(): void {
  const fromPkg = createRequire(require.resolve('mqtt-packet'))
  if (require.cache[fromPkg.resolve('./parser.js')] || require.cache[fromPkg.resolve('./writeToStream.js')]) {
    debugState = 'loaded before the seam'
    return
  }
  const path = fromPkg.resolve('debug')
  const real = fromPkg('debug') as ((ns: string) => unknown) & { enabled(ns: string): boolean }
  const noop = (): void => {}
  require.cache[path]!.exports = new Proxy(real, {
    apply(target, self, args: unknown[]) {
      const ns = args[0]
      if (typeof ns === 'string' && ns.startsWith(DEBUG_PREFIX)) {
        if (!real.enabled(ns)) {
          silenced.push(ns)
          return noop
        }
        debugState = 'on (DEBUG)'
      }
      return Reflect.apply(target, self, args) as unknown
    },
  })
}
silenceDebug()
/** the mqtt-packet module, loaded after its loggers are off */
export const mqttPacket = require('mqtt-packet') as typeof MqttPacket

/** mqtt-packet's debug calls: off (no-ops), on (DEBUG enables them), or still there (mqtt-packet was loaded before this module) */
export function mqttPacketDebug(): { state: typeof debugState; silenced: string[] } {
  return { state: debugState, silenced: [...silenced] }
}
