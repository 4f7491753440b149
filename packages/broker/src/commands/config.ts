/** `culex config`: print the effective configuration, or the README table of every key. */
import type { Command } from 'commander'
import { loadConfig, ConfigError } from '../config/load.js'
import { configTable } from '../config/table.js'
import { unknownEnvironment } from '../config/env-names.js'
import { KEYS, type KeySpec } from '../config/schema.js'
import { addConfigFlags, flagsToKeys } from './start.js'

export function registerConfig(program: Command): void {
  const config = program.command('config').description('inspect configuration')
  addConfigFlags(config.command('print').description('print the merged, validated configuration as JSON')).action((opts: Record<string, unknown>) => {
    try {
      const c = loadConfig({ file: opts.config as string | undefined, env: process.env, flags: flagsToKeys(opts) })
      const shown: Record<string, unknown> = { ...c }
      for (const k of KEYS as readonly KeySpec[]) if (k.secret && shown[k.key] !== undefined) shown[k.key] = '(redacted)'
      process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`)
      for (const line of unknownEnvironment(process.env)) process.stderr.write(`culex: warning: ${line}\n`)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      process.stderr.write(`culex: ${err.message}\n`)
      process.exit(2)
    }
  })
  config
    .command('table')
    .description('print the Markdown table of every config key (file, env, flag, default)')
    .action(() => {
      process.stdout.write(`${configTable()}\n`)
    })
}
