/**
 * Topic ACLs, in the spirit of Mosquitto's acl_file and EMQX's built-in
 * rules. A YAML document:
 *
 *   all:                       # every client, anonymous or not
 *     - allow: pubsub
 *       topic: devices/%u/#    # %u = username, %c = client id (whole levels)
 *   anonymous:                 # clients without a username
 *     - allow: subscribe
 *       topic: public/#
 *   roles:                     # given to users with `culex user add --roles`
 *     readonly:
 *       - allow: subscribe
 *         topic: "#"
 *   users:
 *     alice:
 *       - deny: subscribe
 *         topics: [secret/#]
 *
 * A rule is `allow:` or `deny:` one of publish, subscribe, pubsub, and
 * `topic:` (or `topics:`) filters. Deny wins: an action is allowed when some
 * allow rule grants it and no deny rule refuses it; with an ACL loaded,
 * anything no rule allows is denied. Subscriptions: an allow rule must cover
 * the whole requested filter; a deny rule refuses a filter it covers, and
 * where it only overlaps, the messages it denies are withheld at delivery.
 *
 * Parsing and compiling happen once per ACL load; the checks below allocate
 * nothing per message.
 */
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { compileFilter, coversFilter, matchTopic, type Compiled } from './topic.js'
import { roleProblem } from './users.js'

const action = z.enum(['publish', 'subscribe', 'pubsub'])
const ruleSchema = z
  .strictObject({
    allow: action.optional(),
    deny: action.optional(),
    topic: z.string().optional(),
    topics: z.array(z.string()).optional(),
  })
  .refine((r) => (r.allow === undefined) !== (r.deny === undefined), 'a rule has exactly one of allow: or deny:')
  .refine((r) => r.topic !== undefined || (r.topics !== undefined && r.topics.length > 0), 'a rule needs topic: or topics:')
const rules = z.array(ruleSchema)
const docSchema = z.strictObject({
  all: rules.optional(),
  anonymous: rules.optional(),
  roles: z.record(z.string(), rules).optional(),
  users: z.record(z.string(), rules).optional(),
})
type RuleSpec = z.infer<typeof ruleSchema>

export interface Grants {
  pubAllow: Compiled[]
  pubDeny: Compiled[]
  subAllow: Compiled[]
  subDeny: Compiled[]
}

export class AclError extends Error {}

function emptyGrants(): Grants {
  return { pubAllow: [], pubDeny: [], subAllow: [], subDeny: [] }
}

function compileRules(specs: RuleSpec[] | undefined, where: string): Grants {
  const g = emptyGrants()
  ;(specs ?? []).forEach((spec, i) => {
    const what = (spec.allow ?? spec.deny)!
    const allow = spec.allow !== undefined
    for (const topic of [...(spec.topic !== undefined ? [spec.topic] : []), ...(spec.topics ?? [])]) {
      let compiled: Compiled
      try {
        compiled = compileFilter(topic)
      } catch (err) {
        throw new AclError(`${where}[${i}]: ${(err as Error).message}`)
      }
      if (what !== 'subscribe') (allow ? g.pubAllow : g.pubDeny).push(compiled)
      if (what !== 'publish') (allow ? g.subAllow : g.subDeny).push(compiled)
    }
  })
  return g
}

function merge(...parts: Array<Grants | undefined>): Grants {
  const g = emptyGrants()
  for (const p of parts) {
    if (!p) continue
    g.pubAllow.push(...p.pubAllow)
    g.pubDeny.push(...p.pubDeny)
    g.subAllow.push(...p.subAllow)
    g.subDeny.push(...p.subDeny)
  }
  return g
}

export class Acl {
  private constructor(
    private readonly all: Grants,
    private readonly anonymous: Grants,
    private readonly roles: ReadonlyMap<string, Grants>,
    private readonly users: ReadonlyMap<string, Grants>,
    /** role names the document defines (for warnings about users with unknown roles) */
    readonly roleNames: ReadonlySet<string>,
  ) {}

  /** parse and compile an ACL document; throws AclError naming the bad entry */
  static parse(text: string, source = 'ACL'): Acl {
    let data: unknown
    try {
      data = parseYaml(text)
    } catch (err) {
      throw new AclError(`${source}: cannot parse (${(err as Error).message})`)
    }
    if (data == null) data = {}
    const parsed = docSchema.safeParse(data)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!
      throw new AclError(`${source}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`)
    }
    const doc = parsed.data
    const roles = new Map<string, Grants>()
    for (const [name, specs] of Object.entries(doc.roles ?? {})) {
      const problem = roleProblem(name)
      if (problem) throw new AclError(`${source}: roles.${name}: ${problem}`)
      roles.set(name, compileRules(specs, `${source}: roles.${name}`))
    }
    const users = new Map<string, Grants>()
    for (const [name, specs] of Object.entries(doc.users ?? {})) users.set(name, compileRules(specs, `${source}: users.${name}`))
    return new Acl(
      compileRules(doc.all, `${source}: all`),
      compileRules(doc.anonymous, `${source}: anonymous`),
      roles,
      users,
      new Set(roles.keys()),
    )
  }

  /** the rules that apply to one client: its user's, its roles', and everyone's (anonymous: anonymous + all) */
  grantsFor(username: string | undefined, roles: readonly string[]): Grants {
    if (username === undefined) return merge(this.anonymous, this.all)
    return merge(this.users.get(username), ...roles.map((r) => this.roles.get(r)), this.all)
  }
}

function anyTopic(filters: Compiled[], topic: string, user: string | undefined, clientId: string): boolean {
  for (let i = 0; i < filters.length; i++) if (matchTopic(filters[i]!, topic, user, clientId)) return true
  return false
}

/** may this client publish to topic? */
export function canPublish(g: Grants, topic: string, user: string | undefined, clientId: string): boolean {
  return !anyTopic(g.pubDeny, topic, user, clientId) && anyTopic(g.pubAllow, topic, user, clientId)
}

/** may a message on topic be delivered to this client (checked per delivered message) */
export function canRead(g: Grants, topic: string, user: string | undefined, clientId: string): boolean {
  return !anyTopic(g.subDeny, topic, user, clientId) && anyTopic(g.subAllow, topic, user, clientId)
}

/** may this client subscribe to filter (SUBSCRIBE time only) */
export function canSubscribe(g: Grants, filter: string, user: string | undefined, clientId: string): boolean {
  const levels = filter.split('/')
  for (const f of g.subDeny) if (coversFilter(f, levels, user, clientId)) return false
  for (const f of g.subAllow) if (coversFilter(f, levels, user, clientId)) return true
  return false
}
