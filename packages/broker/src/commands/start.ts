/** `culex start`: run one node until SIGTERM/SIGINT, then stop gracefully. */
import type { Command } from 'commander'
import { KEYS, flagName, envName } from '../config/schema.js'
import { loadConfig, ConfigError } from '../config/load.js'
import { unknownEnvironment } from '../config/env-names.js'

export function addConfigFlags(cmd: Command): Command {
  cmd.option('-c, --config <file>', 'config file (.yaml, .yml or .json)')
  for (const k of KEYS) {
    cmd.option(`${flagName(k.key)} <value>`, `${k.doc} (env ${envName(k.key)})`)
  }
  return cmd
}

/** commander camelCases flags; map them back to config keys */
export function flagsToKeys(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { key } of KEYS) {
    const camel = key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())
    if (opts[camel] !== undefined) out[key] = opts[camel]
  }
  return out
}

export function registerStart(program: Command): void {
  addConfigFlags(program.command('start').description('run a Culex node (single node in memory unless redis_url is set)')).action(
    async (opts: Record<string, unknown>) => {
      let config
      try {
        config = loadConfig({ file: opts.config as string | undefined, env: process.env, flags: flagsToKeys(opts) })
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`culex: ${err.message}\n`)
          process.exit(2)
        }
        throw err
      }
      // A signal while starting is kept and acted on once the node is up: startNode logs `culex ready`
      // (what a supervisor or test waits for: local-cluster/probe.ts) before it returns, and a SIGTERM
      // sent on that line could come before the handlers below, killing the node by the signal's
      // default action (no drain, no exit 0; seen under CPU load). A second signal while starting, or
      // a start that outlasts the grace period after the first, exits at once.
      let early: string | undefined
      let earlyTimer: NodeJS.Timeout | undefined
      let onSignal = (signal: string): void => {
        if (early !== undefined) process.exit(1)
        early = signal
        earlyTimer = setTimeout(() => process.exit(1), config.grace_period_ms)
        earlyTimer.unref()
      }
      // installed once, before the start: never a moment without a handler
      process.on('SIGTERM', () => onSignal('SIGTERM'))
      process.on('SIGINT', () => onSignal('SIGINT'))
      let node
      try {
        // the node's modules are loaded only here: a command that stops at the config (an error, exit
        // 2; `culex config`) does not load Aedes, Fastify, the cluster and ioredis (~1 s of CPU)
        const { startNode } = await import('../main.js')
        node = await startNode(config)
      } catch (err) {
        process.stderr.write(`culex: cannot start: ${(err as Error).message}\n`)
        process.exit(1)
      }
      clearTimeout(earlyTimer)
      // a typo in a variable's name leaves its default in force: say so (config/env-names.ts)
      const unknown = unknownEnvironment(process.env)
      if (unknown.length > 0) node.log.warn({ unknown_env: unknown }, `environment: ${unknown.join('; ')}`)
      // Last resort, not containment: a client's fault is contained where it runs (limits/client-faults.ts).
      // An exception that got here left the process in an unknown state: log it as JSON and exit.
      const fatal = (kind: string) => (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err))
        node.log.fatal({ err: e.message, stack: e.stack }, `${kind}: exiting`)
        process.exit(1)
      }
      process.on('uncaughtException', fatal('uncaught exception'))
      process.on('unhandledRejection', fatal('unhandled rejection'))
      let stopping = false
      const stop = (signal: string): void => {
        // A signal while stopping: a second Ctrl-C exits at once; a repeated SIGTERM (a supervisor
        // stopping the node once its load balancer took it out) must not end the drain or the close
        // half-way, which Node's default action for a signal no longer handled did: publishes queued
        // in Redis but not yet emitted, PUBACKs unread (chaos rolling restart, issue 8)
        if (stopping) {
          if (signal === 'SIGINT') process.exit(1)
          node.log.info({ signal }, 'already stopping')
          return
        }
        stopping = true
        // SIGTERM (an orchestrator: systemd, Docker, a rolling restart) drains first; SIGINT (Ctrl-C) does not
        const drain = signal === 'SIGTERM'
        node.log.info({ signal, drain_ms: drain ? config.drain_ms : 0, grace_period_ms: config.grace_period_ms }, 'shutting down')
        const timer = setTimeout(() => {
          node.log.error('grace period over, forcing exit')
          process.exit(1)
        }, (drain ? config.drain_ms : 0) + config.grace_period_ms)
        timer.unref()
        node.close({ drain }).then(
          () => process.exit(0),
          (err: Error) => {
            node.log.error({ err: err.message }, 'error while stopping')
            process.exit(1)
          },
        )
      }
      onSignal = stop
      if (early !== undefined) stop(early)
    },
  )
}
