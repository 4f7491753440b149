/** Certificates of a local cluster: made on first use with certs.example/make-certs.sh. */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface ClusterCerts {
  dir: string
  ca: string
  pem: string
}

export async function ensureCerts(script: string, dir: string, host?: string): Promise<ClusterCerts> {
  const certs = { dir, ca: join(dir, 'ca.crt'), pem: join(dir, 'server.pem') }
  if (existsSync(certs.ca) && existsSync(certs.pem)) return certs
  try {
    await run('sh', [script, dir, ...(host ? [host] : [])])
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`making certificates with ${script} failed: ${e.stderr || e.message}`)
  }
  return certs
}
