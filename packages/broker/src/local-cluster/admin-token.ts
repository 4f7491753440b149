/**
 * The admin token of a local cluster's API and dashboard: CULEX_ADMIN_TOKEN when set, else a
 * random one made on first use in <dir>/admin-token (readable by the owner only), given to the
 * nodes in their environment (never on a command line, where `ps` shows it).
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function ensureAdminToken(dir: string, env: NodeJS.ProcessEnv = process.env): { token: string; file?: string } {
  if (env.CULEX_ADMIN_TOKEN) return { token: env.CULEX_ADMIN_TOKEN }
  const file = join(dir, 'admin-token')
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim()
    if (token.length >= 16) return { token, file }
  }
  const token = randomBytes(24).toString('hex')
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  return { token, file }
}
