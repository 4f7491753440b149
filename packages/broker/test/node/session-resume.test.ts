/** A persistent session resumes with a large queue, one node in memory (test/helpers/resume.ts). */
import { afterAll, describe, it } from 'vitest'
import { useTestNode } from '../helpers/node.js'
import { closeAllClients } from '../helpers/cluster-mqtt.js'
import { resumeWithLargeQueue } from '../helpers/resume.js'

const t = useTestNode()
afterAll(closeAllClients)

describe('a persistent session resumes with a large queue, in memory', () => {
  it('[MQTT-4.6.0-6] 2,500 queued QoS 1 messages arrive on reconnect, all, in order, once, before the live ones published during the replay', async () => {
    await resumeWithLargeQueue({ first: t.url, again: t.url, pub: t.url }, 2500, 'resume-mem', 30_000)
  })
})
