/**
 * Merges the config sources in rising priority: file < environment < CLI
 * flags, then validates once. Pure apart from reading the file; errors name
 * the key and the source it came from.
 */
import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { configSchema, envName, flagName, KEYS, type CulexConfig } from './schema.js'

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

export interface ConfigSources {
  /** path of a .yaml/.yml/.json config file */
  file?: string
  env?: NodeJS.ProcessEnv
  /** values keyed by config key (snake_case), e.g. from CLI flags */
  flags?: Record<string, unknown>
}

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError([`config file ${path}: cannot read (${(err as Error).message})`])
  }
  let data: unknown
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new ConfigError([`config file ${path}: cannot parse (${(err as Error).message})`])
  }
  if (data == null) return {}
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([`config file ${path}: must hold a mapping of keys to values`])
  }
  return data as Record<string, unknown>
}

export function loadConfig(sources: ConfigSources = {}): CulexConfig {
  const merged: Record<string, unknown> = {}
  const origin: Record<string, string> = {}
  if (sources.file) {
    for (const [k, v] of Object.entries(readConfigFile(sources.file))) {
      merged[k] = v
      origin[k] = `config file key "${k}"`
    }
  }
  const env = sources.env ?? {}
  for (const { key } of KEYS) {
    const v = env[envName(key)]
    if (v !== undefined && v !== '') {
      merged[key] = v
      origin[key] = `environment variable ${envName(key)}`
    }
  }
  for (const [k, v] of Object.entries(sources.flags ?? {})) {
    if (v === undefined) continue
    merged[k] = v
    origin[k] = `flag ${flagName(k)}`
  }
  const result = configSchema.safeParse(merged)
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}: not a Culex setting`
    }
    const key = String(issue.path[0] ?? '')
    const where = origin[key] ?? `key "${key}"`
    return `${key} (${where}, value ${JSON.stringify(merged[key])}): ${issue.message}`
  })
  throw new ConfigError(problems)
}
