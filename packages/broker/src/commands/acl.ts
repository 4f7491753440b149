/**
 * `culex acl check|set|show|clear`: validate an ACL file, or manage the ACL
 * of a cluster (kept in Redis; every node applies a change within a second).
 * A single node reads its acl_file directly and reloads it when it changes.
 */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { Acl } from '../auth/acl.js'
import { RedisUserStore } from '../auth/store.js'
import { resolveTarget, runAction, UsageError } from './user.js'

function clusterStore(opts: { redis?: string }): RedisUserStore {
  const target = resolveTarget({ redis: opts.redis }, { ...process.env, CULEX_USERS_FILE: undefined })
  if (target.kind !== 'redis') throw new UsageError('culex acl set/show/clear manage a cluster: pass --redis URL')
  return new RedisUserStore(target.url)
}

function readChecked(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    Acl.parse(text, file)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  return text
}

const run = runAction('acl')

export function registerAcl(program: Command): void {
  const acl = program.command('acl').description('check an ACL file, or manage the ACL of a cluster')
  const redisFlag = (c: Command): Command => c.option('--redis <url>', 'Redis of the cluster (env CULEX_REDIS_URL; default: .culex/cluster.json here)')

  acl
    .command('check <file>')
    .description('validate an ACL file (exit 2 naming the bad rule)')
    .action(
      run(async (file: string) => {
        readChecked(file)
        process.stdout.write(`${file}: OK\n`)
      }),
    )

  redisFlag(acl.command('set <file>').description('validate an ACL file and make it the cluster ACL')).action(
    run(async (file: string, opts: { redis?: string }) => {
      const text = readChecked(file)
      const store = clusterStore(opts)
      try {
        await store.setAcl(text)
        process.stdout.write(`ACL from ${file} set in ${store.where}\n`)
      } finally {
        await store.close()
      }
    }),
  )

  redisFlag(acl.command('show').description('print the cluster ACL')).action(
    run(async (opts: { redis?: string }) => {
      const store = clusterStore(opts)
      try {
        const text = await store.getAcl()
        process.stdout.write(text ?? '# no ACL: every authenticated client may publish and subscribe (except $SYS)\n')
      } finally {
        await store.close()
      }
    }),
  )

  redisFlag(acl.command('clear').description('remove the cluster ACL (no topic restrictions)')).action(
    run(async (opts: { redis?: string }) => {
      const store = clusterStore(opts)
      try {
        await store.setAcl(undefined)
        process.stdout.write(`ACL removed from ${store.where}\n`)
      } finally {
        await store.close()
      }
    }),
  )
}
