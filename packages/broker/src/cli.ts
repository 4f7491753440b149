#!/usr/bin/env node
/** The `culex` command line. Each sub-command lives in commands/. */
import { Command } from 'commander'
import { VERSION } from './version.js'
import { registerStart } from './commands/start.js'
import { registerConfig } from './commands/config.js'
import { registerUser } from './commands/user.js'
import { registerAcl } from './commands/acl.js'
import { registerCluster } from './commands/cluster.js'

const program = new Command('culex').description('Culex MQTT broker cluster').version(VERSION)
registerStart(program)
registerConfig(program)
registerUser(program)
registerAcl(program)
registerCluster(program)

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`culex: ${err.message}\n`)
  process.exit(1)
})
