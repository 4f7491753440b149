/**
 * Row A30 (broker/conformance-retained.ts): Aedes 2 streams a SUBSCRIBE's retained messages from
 * `broker.persistence.createRetainedStreamCombi`, read at each SUBSCRIBE, and pipes that stream
 * with no 'error' listener. A store that fails while it reads them (a Redis gone mid-read) must
 * not end the process: with the wrapper the subscriber gets its SUBACK and the retained messages
 * read before the failure, the failure is logged, and the same connection keeps working.
 */
import { Readable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { installRetainedStreams } from '../../src/broker/conformance-retained.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

it('A30 a retained store that fails mid-read: SUBACK, the messages read before it, a warning; the connection and the broker serve on', async () => {
  const warnings: string[] = []
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) })
  const s = await stockBroker({}, (broker) => {
    const store = seam.persistenceOf(broker) as { createRetainedStreamCombi(patterns: string[]): Readable }
    // what the store reads: one retained message, then its link fails
    store.createRetainedStreamCombi = () =>
      Readable.from(
        (async function* () {
          yield { cmd: 'publish', topic: 'a30/first', payload: Buffer.from('kept'), qos: 0, retain: true }
          throw new Error('connection lost')
        })(),
      )
    installRetainedStreams(broker, log)
  })
  const { raw } = await rawClient(s.port, { clientId: 'a30' })
  await rawSubscribe(raw, 'a30/#', 0)
  await raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.topic === 'a30/first'), 5000, 'the retained message read before the failure')
  await expect.poll(() => warnings).toContain('retained messages of a SUBSCRIBE not all sent: the store failed while reading them')
  // the same connection: a live message still arrives
  raw.send({ cmd: 'publish', topic: 'a30/live', payload: Buffer.from('live'), qos: 0, retain: false })
  await raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.topic === 'a30/live'), 5000, 'a live message after the failure')
})
