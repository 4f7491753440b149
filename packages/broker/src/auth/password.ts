/**
 * Password hashing with scrypt (node:crypto): a random 16-byte salt per
 * password and a memory-hard key derivation, so a leaked users file or Redis
 * dump does not give passwords away. Hashes are self-describing strings:
 *
 *   $scrypt$N=16384,r=8,p=1$<salt base64>$<hash base64>
 *
 * (no ':' so they fit the `user:hash:roles` line of the users file). The
 * async scrypt runs on the libuv thread pool: a login never blocks the event
 * loop that moves messages.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

export interface ScryptParams {
  N: number
  r: number
  p: number
}

/** OWASP's minimum for scrypt: N=2^14 (16 MiB of memory per hash), r=8, p=1 */
export const DEFAULT_PARAMS: ScryptParams = { N: 16384, r: 8, p: 1 }
const KEY_LENGTH = 32
const SALT_LENGTH = 16
/** refuse hashes asking for absurd work (a tampered users file must not stall the node) */
const MAX_N = 1 << 20

function derive(password: string | Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, opts, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_LENGTH)
  const key = await derive(password, salt, params)
  return `$scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

interface Parsed {
  params: ScryptParams
  salt: Buffer
  key: Buffer
}

export function parseHash(encoded: string): Parsed | undefined {
  const m = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded)
  if (!m) return undefined
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (N < 2 || N > MAX_N || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return undefined
  const salt = Buffer.from(m[4]!, 'base64')
  const key = Buffer.from(m[5]!, 'base64')
  if (salt.length < 8 || key.length < 16) return undefined
  return { params: { N, r, p }, salt, key }
}

export function isValidHash(encoded: string): boolean {
  return parseHash(encoded) !== undefined
}

/** a hash of a random password: verifying unknown users against it costs the same time as a real check */
let dummy: Promise<string> | undefined
export function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(16).toString('hex')))
}

/** constant-time check of a password against an encoded hash; false for a malformed hash */
export async function verifyPassword(password: string | Buffer, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded)
  if (!parsed) return false
  // the CONNECT password is raw bytes; a password typed into `culex user` is hashed as its UTF-8 bytes
  const key = await derive(password, parsed.salt, parsed.params)
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key)
}
