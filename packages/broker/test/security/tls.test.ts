/**
 * Mutual TLS: the node's own TLS listener asks for client certificates, and
 * with cert_cn_as_username a verified certificate's CN is the username that
 * ACL %u rules see. The HAProxy-terminated variant passes the CN in a PROXY
 * v2 TLV, parsed by proxyV2TlsIdentity.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { proxyV2TlsIdentity, tlsConnDetails } from '../../src/auth/proxy-tls.js'
import type { CulexNode } from '../../src/main.js'
import { makeCerts, type TestCerts } from '../helpers/security-certs.js'
import { startTestNode, stopAll, suback, tempDir } from '../helpers/security-node.js'

let certs: TestCerts
let node: CulexNode

beforeAll(async () => {
  const dir = tempDir()
  certs = makeCerts(dir)
  const acl = join(dir, 'acl.yaml')
  writeFileSync(acl, 'all:\n  - allow: pubsub\n    topic: devices/%u/#\n')
  node = await startTestNode({
    tls_port: 0,
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
    tls_ca: certs.ca,
    tls_require_client_cert: true,
    cert_cn_as_username: true,
    acl_file: acl,
    allow_anonymous: false,
  })
})
afterAll(stopAll)

/** connect over TLS; the CONNACK code, or the error of a failed handshake */
async function tlsConnect(client: string | undefined, opts: { username?: string } = {}): Promise<{ code: number; c?: mqtt.MqttClient } | { error: string }> {
  const c = mqtt.connect(`mqtts://127.0.0.1:${node.ports.tls}`, {
    ca: certs.caPem,
    ...(client ? certs.client(client) : {}),
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    username: opts.username,
  })
  return new Promise((resolve) => {
    c.once('connect', () => resolve({ code: 0, c }))
    c.once('error', (err: Error & { code?: number | string }) => {
      c.end(true)
      resolve(typeof err.code === 'number' ? { code: err.code } : { error: err.message })
    })
    c.once('close', () => resolve({ error: 'closed' }))
  })
}

describe('mutual TLS on the node', () => {
  it('takes a verified certificate CN as the username: ACL %u applies without a password', async () => {
    const r = await tlsConnect('alice')
    expect(r).toMatchObject({ code: 0 })
    const c = (r as { c: mqtt.MqttClient }).c
    expect(await suback(c, ['devices/alice/#', 'devices/bob/#'])).toEqual([1, 128])
    await c.endAsync()
  })

  it('refuses a username that differs from the certificate CN (CONNACK 4)', async () => {
    expect(await tlsConnect('bob', { username: 'alice' })).toMatchObject({ code: 4 })
  })

  it('fails the handshake without a client certificate, or with one from another CA', async () => {
    expect(await tlsConnect(undefined)).toHaveProperty('error')
    expect(await tlsConnect('mallory')).toHaveProperty('error')
  })
})

describe('HAProxy-terminated mTLS: PROXY v2 SSL TLV', () => {
  /** a v2 header for 10.0.0.1:5000 -> 10.0.0.2:1883 with an SSL TLV */
  function header(client: number, verify: number, cn?: string): Buffer {
    const addr = Buffer.from([10, 0, 0, 1, 10, 0, 0, 2, 0x13, 0x88, 0x07, 0x5b])
    const sub = cn === undefined ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x22, 0, Buffer.byteLength(cn)]), Buffer.from(cn)])
    const sslValue = Buffer.concat([Buffer.from([client]), Buffer.from([0, 0, 0, verify]), sub])
    const tlv = Buffer.concat([Buffer.from([0x20, sslValue.length >> 8, sslValue.length & 255]), sslValue])
    const body = Buffer.concat([addr, tlv])
    const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
    return Buffer.concat([sig, Buffer.from([0x21, 0x11, body.length >> 8, body.length & 255]), body])
  }

  it('reads a verified CN (client flags SSL + certificate, verify 0)', () => {
    const id = proxyV2TlsIdentity(header(0x07, 0, 'alice'))
    expect(id).toEqual({ ssl: true, certAuthorized: true, cn: 'alice' })
    expect(tlsConnDetails(id)).toEqual({ isTls: true, certAuthorized: true, cert: { subject: { CN: 'alice' } } })
  })

  it('does not call a certificate verified when HAProxy says it is not, or none was sent', () => {
    expect(proxyV2TlsIdentity(header(0x07, 1, 'alice'))).toMatchObject({ certAuthorized: false })
    expect(proxyV2TlsIdentity(header(0x01, 0))).toMatchObject({ ssl: true, certAuthorized: false })
    const truncated = header(0x07, 0, 'alice').subarray(0, 30)
    expect(proxyV2TlsIdentity(truncated)).toBeUndefined()
  })
})
