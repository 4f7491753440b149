/** A throwaway CA, server and client certificates made with the openssl CLI, for the TLS tests. */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const ssl = (dir: string, args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })

function ca(dir: string, name: string): void {
  ssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`])
}

function leaf(dir: string, name: string, cn: string, caName: string, ext: string): void {
  ssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  writeFileSync(join(dir, `${name}.ext`), ext)
  ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
}

export interface TestCerts {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  client(name: string): { cert: Buffer; key: Buffer }
  caPem: Buffer
}

/** CA "ca" signs the server (127.0.0.1) and clients alice and bob; CA "rogue" signs mallory */
export function makeCerts(dir: string): TestCerts {
  ca(dir, 'ca')
  ca(dir, 'rogue')
  leaf(dir, 'server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  for (const user of ['alice', 'bob']) leaf(dir, user, user, 'ca', 'extendedKeyUsage=clientAuth\n')
  leaf(dir, 'mallory', 'alice', 'rogue', 'extendedKeyUsage=clientAuth\n')
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    caPem: readFileSync(join(dir, 'ca.crt')),
    client: (name) => ({ cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)) }),
  }
}
