/** mqtts:// and wss:// with --ca, and --username/--password, against a Mosquitto configured for both. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePorts, waitForPort } from '../src/suite/ports.js'
import { Managed } from '../src/suite/process.js'
import { findBin } from '../src/suite/brokers.js'
import { BRIEF, ensureBuilt, runCli, runJson } from './helpers.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'culex-bench-tls-'))
let broker: Managed
let ports: number[] = []
const f = (name: string): string => path.join(dir, name)

beforeAll(async () => {
  await ensureBuilt()
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=bench test CA')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost')
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext.cnf')
  writeFileSync(f('passwords'), '')
  execFileSync('mosquitto_passwd', ['-b', f('passwords'), 'bench', 's3cret'])
  chmodSync(f('srv.key'), 0o644)
  chmodSync(f('passwords'), 0o644)
  chmodSync(dir, 0o755) // mosquitto started as root drops to its own user, which must read these files
  ports = await freePorts(3)
  const tls = [`cafile ${f('ca.pem')}`, `certfile ${f('srv.pem')}`, `keyfile ${f('srv.key')}`]
  writeFileSync(
    f('mosquitto.conf'),
    [
      'per_listener_settings true',
      `listener ${ports[0]} 127.0.0.1`, ...tls, 'allow_anonymous true',
      `listener ${ports[1]} 127.0.0.1`, 'protocol websockets', ...tls, 'allow_anonymous true',
      `listener ${ports[2]} 127.0.0.1`, `password_file ${f('passwords')}`, 'allow_anonymous false',
      '',
    ].join('\n'),
  )
  broker = new Managed('mosquitto', findBin('mosquitto'), ['-c', f('mosquitto.conf')])
  try {
    for (const p of ports) await waitForPort(p, 10_000, broker.alive)
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${broker.output()}`)
  }
}, 60_000)

afterAll(async () => {
  await broker?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('TLS and authentication', () => {
  it('publishes over mqtts:// and subscribes over wss://, verifying the broker with --ca', async () => {
    const { report } = await runJson(['throughput', '--pub', `mqtts://localhost:${ports[0]}`, '--sub', `wss://127.0.0.1:${ports[1]}/mqtt`, '--ca', f('ca.pem'), '--pairs', '2', ...BRIEF])
    expect(report.valid).toBe(true)
    expect(report.results.lost).toBe(0)
    expect(report.results.deliveries_per_s).toBeGreaterThan(0)
  })

  it('refuses a broker certificate it cannot verify', async () => {
    const r = await runCli(['latency', '--url', `mqtts://127.0.0.1:${ports[0]}`, ...BRIEF])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/self-signed certificate/)
  })

  it('logs in with --username/--password and reports a refused login plainly', async () => {
    const ok = await runJson(['latency', '--url', `mqtt://127.0.0.1:${ports[2]}`, '--username', 'bench', '--password', 's3cret', '--rate', '100', ...BRIEF])
    expect(ok.report.valid).toBe(true)
    const bad = await runCli(['latency', '--url', `mqtt://127.0.0.1:${ports[2]}`, '--username', 'bench', '--password', 'wrong', ...BRIEF])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/connection refused: not authorized/)
  })
})
