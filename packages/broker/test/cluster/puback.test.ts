/**
 * [MQTT-4.3.2-2] A QoS 1 PUBACK means the message is safe: a node acknowledges only once the
 * message is in Redis (cluster bus, offline queues), so killing the node right after the PUBACK
 * loses nothing. Stock Aedes writes the PUBACK before it publishes.
 */
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, sleep, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis({ debugCommand: true })
  ;[a, b] = await Promise.all([startNode(redis.url, 'ack-a'), startNode(redis.url, 'ack-b')])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('PUBACK waits until Redis has the message, and a node killed right after it loses nothing', async () => {
  // a persistent session, subscribed through B, offline
  const first = await mqttConnect(b.url, { clientId: 'durable-1', clean: false })
  await first.subscribeAsync('dur/#', { qos: 1 })
  await first.endAsync()

  const pub = await mqttConnect(a.url)
  // Redis stops answering for a second (DEBUG SLEEP blocks the server)
  const sleeper = spawn('redis-cli', ['-p', String(redis.port), 'DEBUG', 'SLEEP', '1'])
  const awake = new Promise((r) => sleeper.once('exit', r))
  await sleep(150)
  const t0 = Date.now()
  await pub.publishAsync('dur/t', 'safe', { qos: 1 })
  const ackMs = Date.now() - t0
  // acknowledged only after Redis woke up and stored it, not at once
  expect(ackMs).toBeGreaterThan(600)
  await a.kill9()
  await awake

  const again = await mqttConnect(b.url, { clientId: 'durable-1', clean: false })
  const got = collect(again)
  const deadline = Date.now() + 5000
  while (got.length === 0 && Date.now() < deadline) await sleep(20)
  expect(got.map((m) => m.payload)).toEqual(['safe'])
}, 30_000)
