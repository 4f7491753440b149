/**
 * Mutual TLS terminated by a real HAProxy: it verifies the client certificate against the CA
 * (`verify required`) and passes the verified CN to the node in the PROXY v2 header
 * (`send-proxy-v2-ssl-cn`); with cert_cn_as_username the node takes that CN as the username,
 * believing it only because HAProxy's address is in trusted_proxies.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, spawnProc, waitFor } from '../helpers/cluster-procs.js'
import { freePort } from '../helpers/ports.js'
import { which } from '../../src/local-cluster/procs.js'
import { makeCerts, type TestCerts } from '../helpers/security-certs.js'
import { startTestNode, stopAll, suback, tempDir } from '../helpers/security-node.js'

let certs: TestCerts
let node: CulexNode
let port: number

const listening = (p: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createConnection(p, '127.0.0.1')
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })

beforeAll(async () => {
  const dir = tempDir()
  certs = makeCerts(dir)
  const acl = join(dir, 'acl.yaml')
  writeFileSync(acl, 'all:\n  - allow: pubsub\n    topic: devices/%u/#\n')
  node = await startTestNode({ trusted_proxies: '127.0.0.1', cert_cn_as_username: true, acl_file: acl, allow_anonymous: false })
  const pem = join(dir, 'haproxy.pem')
  writeFileSync(pem, Buffer.concat([readFileSync(certs.serverCert), readFileSync(certs.serverKey)]))
  writeFileSync(join(dir, 'ca-file.pem'), certs.caPem)
  port = await freePort()
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend mqtts',
      `  bind 127.0.0.1:${port} ssl crt ${pem} ca-file ${join(dir, 'ca-file.pem')} verify required`,
      '  default_backend culex',
      'backend culex',
      `  server n1 127.0.0.1:${node.ports.mqtt} send-proxy-v2-ssl-cn`,
      '',
    ].join('\n'),
  )
  const haproxy = spawnProc(which('haproxy') ?? 'haproxy', ['-db', '-f', cfg])
  await waitFor(async () => {
    if (haproxy.child.exitCode !== null) throw new Error(`haproxy exited: ${haproxy.err.join('')}`)
    return listening(port)
  }, 10_000, 'haproxy listening')
}, 60_000)
afterAll(async () => {
  await killAll()
  await stopAll()
})

async function viaHaproxy(client?: string): Promise<{ c: mqtt.MqttClient } | { error: string }> {
  const c = mqtt.connect(`mqtts://127.0.0.1:${port}`, { ca: certs.caPem, ...(client ? certs.client(client) : {}), reconnectPeriod: 0, connectTimeout: 3000 })
  return new Promise((resolve) => {
    c.once('connect', () => resolve({ c }))
    c.once('error', (err) => (c.end(true), resolve({ error: err.message })))
    c.once('close', () => resolve({ error: 'closed' }))
  })
}

it('a client certificate verified by HAProxy logs in as its CN without a password; ACL %u applies', async () => {
  const r = await viaHaproxy('alice')
  expect(r).toHaveProperty('c')
  const c = (r as { c: mqtt.MqttClient }).c
  expect(await suback(c, ['devices/alice/#', 'devices/bob/#'])).toEqual([1, 128])
  await c.endAsync()
})

it('without a client certificate, or with one from another CA, there is no session', async () => {
  expect(await viaHaproxy(undefined)).toHaveProperty('error')
  expect(await viaHaproxy('mallory')).toHaveProperty('error')
})
