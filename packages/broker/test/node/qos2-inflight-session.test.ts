/**
 * Outgoing QoS 2 with a persistent session, several messages past PUBREC at once: each is
 * completed exactly once [MQTT-4.3.3-*]. After a reconnect the broker resends a PUBREL for every
 * message whose PUBREC it received, with that message's packet id, and the PUBLISH (DUP=1, same id)
 * of one that got no PUBREC [MQTT-4.4.0-1] [MQTT-3.3.1-1]. One node in memory mode, one on a real
 * redis-server, and Mosquitto as the reference, all with the same raw client (helpers/qos2-inflight.ts).
 */
import { createConnection } from 'node:net'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { freePort, killAll, spawnProc, startRedis, tempDir, waitFor } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { destroyAll } from '../conformance/raw.js'
import { expectedResend, qos2InFlightRound } from '../helpers/qos2-inflight.js'

const MOSQUITTO = '/usr/sbin/mosquitto'

async function startMosquitto(): Promise<number> {
  const port = await freePort()
  const conf = join(tempDir('culex-mosquitto-'), 'mosquitto.conf')
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
  const proc = spawnProc(MOSQUITTO, ['-c', conf])
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`mosquitto exited: ${proc.err.join('')}`)
    const sock = createConnection(port, '127.0.0.1')
    // events.once rejects on 'error': refused means not yet
    const ok = await once(sock, 'connect').then(() => true, () => false)
    sock.destroy()
    return ok
  }, 10_000, 'mosquitto listening')
  return port
}

const nodes: CulexNode[] = []
const ports: Record<'memory' | 'redis' | 'mosquitto', number> = { memory: 0, redis: 0, mosquitto: 0 }
beforeAll(async () => {
  const redis = await startRedis()
  const memory = await startTestNode({ node_id: 'q2-mem', allow_anonymous: true })
  const onRedis = await startTestNode({ node_id: 'q2-redis', redis_url: redis.url, allow_anonymous: true })
  nodes.push(memory, onRedis)
  ports.memory = memory.ports.mqtt
  ports.redis = onRedis.ports.mqtt
  ports.mosquitto = await startMosquitto()
})
afterAll(async () => {
  destroyAll()
  await Promise.all(nodes.map((n) => n.close()))
  await killAll()
})

for (const target of ['memory', 'redis', 'mosquitto'] as const) {
  describe(`${target === 'mosquitto' ? 'Mosquitto (reference)' : `one Culex node, ${target} mode`}`, () => {
    for (const version of [4, 5] as const) {
      for (const { pubrecsTogether, queued } of [{ pubrecsTogether: true }, { pubrecsTogether: false }, { pubrecsTogether: true, queued: true }]) {
        const how = `${queued ? 'queued while offline, replayed' : 'live'}, PUBRECs ${pubrecsTogether ? 'in one read' : 'one at a time'}`
        it(`[MQTT-4.4.0-1] [MQTT-4.3.3-*] MQTT ${version === 5 ? '5' : '3.1.1'}: two QoS 2 messages past PUBREC and one not (${how}), gone before PUBCOMP: a PUBREL for each with its own id, live and on reconnect, the third as PUBLISH DUP=1, nothing left after`, async () => {
          const id = `q2-${target}-${version}-${pubrecsTogether ? 'one' : 'each'}${queued ? '-q' : ''}`
          const r = await qos2InFlightRound(ports[target], version, id, { pubrecsTogether, queued })
          expect(new Set(r.ids).size).toBe(3)
          expect(r.firstPubrels).toEqual(r.ids.slice(0, 2))
          expect(r.resent).toEqual(expectedResend(r.ids))
          expect(r.leftOver).toEqual([])
        })
      }
    }
  })
}
