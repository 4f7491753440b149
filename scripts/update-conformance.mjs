// Rewrites docs/conformance.md (MQTT 3.1.1) and docs/conformance-v5.md (MQTT 5), and their
// summaries in the README, from a run of each conformance suite: `npm run conformance` (both), or
// `npm run conformance -- 3.1.1` / `-- 5`. The statements and their status live in each suite's
// statements.json (packages/broker/test/conformance, packages/broker/test/conformance-v5); which
// test covers which statement comes from the ids in the test names; pass/fail per mode from
// vitest's JSON report of this run. A v5 statement may record known failures (`fails`: the test,
// the modes, why): those tests run as it.fails and the page shows "**fail**" with the reason.
// Each suite's doc.test.ts keeps the result current (checks in test/conformance/doc-check.ts).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { V5_TEXT } from './conformance-v5-text.mjs'

const root = new URL('../', import.meta.url)
const read = (p) => readFileSync(new URL(p, root), 'utf8')
const MODES = ['memory', 'redis', 'two-nodes']
const esc = (t) => t.replaceAll('|', '\\|')
const ID = /\[(MQTT-[0-9.]+-\d+)\]/g

const SUITES = {
  '3.1.1': { dir: 'packages/broker/test/conformance', page: 'docs/conformance.md', marker: 'conformance', render: render311 },
  5: { dir: 'packages/broker/test/conformance-v5', page: 'docs/conformance-v5.md', marker: 'conformance-v5', render: render5 },
}
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SUITES)
let ok = true
for (const name of wanted) {
  const suite = SUITES[name]
  if (!suite) throw new Error(`unknown suite ${name} (3.1.1 or 5)`)
  ok = update(suite) && ok
}
if (!ok) {
  console.error('conformance: some tests failed or a known failure passes now; the page shows which')
  process.exit(1)
}

/** run the suite, rewrite its page and README summary; false if something is not as recorded */
function update(suite) {
  const statements = JSON.parse(read(`${suite.dir}/statements.json`))
  const dir = mkdtempSync(join(tmpdir(), 'culex-conformance-'))
  const report = join(dir, 'report.json')
  // the trailing slash: test/conformance must not also run test/conformance-v5
  const run = spawnSync('npx', ['vitest', 'run', `${suite.dir}/`, '--exclude', '**/doc.test.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    cwd: new URL('.', root),
    stdio: 'inherit',
  })
  const results = JSON.parse(readFileSync(report, 'utf8'))
  rmSync(dir, { recursive: true, force: true })

  /** id -> { tests: Set<"file: title">, modes: { memory: { passed, failed, expected, unexpected } ... } } */
  const byId = new Map()
  const failureOf = (s, mode, title) => (s?.fails ?? []).find((f) => f.modes.includes(mode) && title.includes(f.test))
  const stmt = new Map(statements.map((s) => [s.id, s]))
  for (const file of results.testResults.filter((f) => f.name.includes(`${suite.dir}/`))) {
    const name = basename(file.name)
    for (const a of file.assertionResults) {
      const mode = a.ancestorTitles[0]
      for (const [, id] of a.title.matchAll(ID)) {
        let e = byId.get(id)
        if (!e) byId.set(id, (e = { tests: new Set(), modes: {} }))
        e.tests.add(`${name}: ${a.title.replace(/\[MQTT-[0-9.]+-\d+\]\s*/g, '')}`)
        const m = (e.modes[mode] ??= { passed: 0, failed: 0, expected: 0, unexpected: 0 })
        // a known failure runs as it.fails: "passed" means it failed as recorded
        const known = failureOf(stmt.get(id), mode, a.title)
        const passed = a.status === 'passed'
        if (known && passed) m.expected++
        else if (known) m.unexpected++
        else if (passed) m.passed++
        else m.failed++
      }
    }
  }
  const cell = (e, mode) => {
    const m = e?.modes[mode]
    if (!m) return '—'
    if (m.unexpected) return `**passes now** (${m.unexpected}): update statements.json`
    if (m.failed) return `**FAIL** (${m.failed})`
    return m.expected ? '**fail**' : 'pass'
  }
  const rows = statements.map((s) => {
    const e = byId.get(s.id)
    const label = { elsewhere: 'Elsewhere', untestable: 'Not testable', client: 'Client only', open: 'Not tested yet' }[s.status]
    const fails = (s.fails ?? []).map((f) => `<br>**Fails** (${f.modes.join(', ')}): ${esc(f.why)}`).join('')
    const what = s.status === 'test' ? ([...(e?.tests ?? [])].map(esc).join('<br>') || '**no test**') + fails : `${label}: ${esc(s.note)}`
    const modes = s.status === 'test' ? MODES.map((m) => cell(e, m)) : MODES.map(() => '—')
    return `| [${s.id}] | ${esc(s.text)} | ${what} | ${modes.join(' | ')} |`
  })
  const tested = statements.filter((s) => s.status === 'test')
  const cells = new Map(tested.map((s) => [s.id, MODES.map((m) => cell(byId.get(s.id), m))]))
  const allAsRecorded = tested.every((s) => cells.get(s.id).every((c) => c === 'pass' || c === '**fail**'))
  const count = (status) => statements.filter((s) => s.status === status).length
  const counts = {
    listed: statements.length,
    tested: tested.length,
    passing: tested.filter((s) => cells.get(s.id).every((c) => c === 'pass')).length,
    failing: tested.filter((s) => cells.get(s.id).some((c) => c !== 'pass')).length,
    elsewhere: count('elsewhere'),
    untestable: count('untestable'),
    client: count('client'),
    open: count('open'),
  }
  const { summary, doc } = suite.render(counts, rows, allAsRecorded)
  writeFileSync(new URL(suite.page, root), doc)
  const start = `<!-- ${suite.marker}:start -->`
  const end = `<!-- ${suite.marker}:end -->`
  const block = `${start}\n${summary} Statement by statement, with the test and its result in each mode, and the\nchoices the standard leaves to the server: [${suite.page}](${suite.page}).\n${end}`
  let readme = read('README.md')
  if (readme.includes(start)) readme = readme.replace(new RegExp(`${start}[\\s\\S]*${end}`), block)
  else readme = readme.replace('<!-- conformance:end -->', `<!-- conformance:end -->\n\n${block}`)
  writeFileSync(new URL('README.md', root), readme)
  return run.status === 0 && allAsRecorded
}

function render311(c, rows, allPass) {
  const summary = `${c.tested} of the ${c.listed} normative statements of MQTT 3.1.1 chapters 1-4 are tested here${allPass ? ', and pass in all three modes' : ''}; ${c.elsewhere} ${c.elsewhere === 1 ? 'is' : 'are'} covered by tests elsewhere, ${c.untestable} cannot be tested from outside, ${c.client} bind only the Client.`
  const doc = `# MQTT 3.1.1 conformance

<!-- generated by \`npm run conformance\` (scripts/update-conformance.mjs) from a run of the suite; do not edit by hand -->

${summary}

Every normative statement (\`[MQTT-x.y.z-n]\`) of the
[OASIS MQTT 3.1.1 standard](https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html),
chapters 1-4, is listed below with the tests that cover it, or where it is tested elsewhere, or why
it cannot be tested from outside or binds only the Client. The tests are in
[packages/broker/test/conformance/](../packages/broker/test/conformance/), one file per chapter
(chapter 3 in four), the id in every test name. The tests speak raw MQTT
(\`raw.ts\`: bytes in, bytes out, no client library to retry, acknowledge or hide what the server
sent) and run in three modes: one node in memory, one node on Redis, and two nodes sharing a Redis,
where a client returning to its session, a later subscriber of a retained message and the
subscribers of a message sit on the other node. \`npm test\` runs them all; \`npm run conformance\`
runs them and rewrites this page. Statements are listed in
\`packages/broker/test/conformance/statements.json\`.

## Fixed in Culex's Aedes layer

Each has its test below; the code is in \`packages/broker/src/broker/conformance*.ts\`. Marked ↑:
worth reporting upstream (Aedes 1.2 / mqtt-packet). The per-packet checks of
\`packages/broker/src/limits/packet-check.ts\` (issue 16) close will QoS 3 [MQTT-3.1.2-14], a CONNECT
with a user name or password its flags do not announce [MQTT-3.1.2-18] [MQTT-3.1.2-20], an
UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2] (mqtt-packet checks the length before the
packet id is read, so Aedes answered it) and missing or zero packet ids [MQTT-2.3.1-1]; their tests
here fail without them. Re-delivery of in-flight messages with DUP 1 and their packet ids on a
session's return [MQTT-4.4.0-1] [MQTT-3.3.1-1] is \`packages/broker/src/broker/redelivery.ts\`
(tested also in test/node/inflight.test.ts and test/cluster/inflight.test.ts), checked here with
the client moving to the other node.

- Unsupported protocol level: CONNACK 0x01, then close [MQTT-3.1.2-2] (mqtt-packet's parser refused it first, so the socket closed with no CONNACK) ↑
- Zero-length client id with Clean Session 0: CONNACK 0x02 [MQTT-3.1.3-8] (Aedes made up an id) ↑
- Password flag without user name flag [MQTT-3.1.2-22], a will topic that is empty or holds a wildcard [MQTT-4.7.3-1] [MQTT-3.3.2-2]: closed without CONNACK (were accepted) ↑
- \`keepalive_max_s\`: a longer keepalive, or 0, is accepted and held to the cap (dropped after 1.5 x the cap of silence, as EMQX does with \`keepalive_max\`); Aedes refused it with CONNACK 6, a code 3.1.1 does not have
- Session Present 1 for every stored session, also one holding no subscription (only a QoS 2 message waiting for PUBREL, or nothing yet) [MQTT-3.2.2-2]; in a cluster through the Redis set \`culex:sessions\` ↑
- Filters whose wildcards do not fill a level (\`a#\`, \`a+/b\`, \`+a\`): closed [MQTT-4.7.1-2] [MQTT-4.7.1-3] (an off-by-one in Aedes' validateTopic granted them) ↑
- Delivery QoS: the minimum of the message's QoS and the QoS granted to the matching wildcard filter [MQTT-3.8.4-6] (Aedes looked the grant up by topic name and sent QoS 2 on a QoS 1 \`a/#\`, also for retained messages, and replayed an offline session's queue at the published QoS) ↑; overlapping subscriptions deliver once at the highest granted QoS [MQTT-3.3.5-1] (the QoS 0 copy could win the duplicate filter)
- An incoming PUBLISH's DUP flag is not passed on to subscribers or offline queues [MQTT-3.3.1-3] ↑
- A level 4 CONNECT named \`MQIsdp\` (the name of MQTT 3.1) is closed without CONNACK [MQTT-3.1.2-1] (mqtt-packet let it through and the connection was left open, unanswered) ↑
- An acknowledgement of the wrong kind (PUBREC or PUBCOMP for a QoS 1 message, PUBACK for a QoS 2 one) closes the connection [MQTT-4.8.0-1] (Aedes answered a PUBREC with a PUBREL whatever the QoS) ↑

## Deliberate choices where the standard lets the server choose

- A PUBLISH the ACL denies closes the connection [MQTT-3.3.5-2] (the alternative, a positive acknowledgement, hides the refusal from the publisher); every node does the same.
- A string holding U+0000 closes the connection [MQTT-1.5.3-2] (MAY).
- A wrong protocol name closes the connection without CONNACK [MQTT-3.1.2-1] (MAY).
- An invalid topic filter in a SUBSCRIBE or UNSUBSCRIBE closes the connection rather than a SUBACK 0x80 (as Aedes already did for \`a/#/b\`, and as Mosquitto does); a filter the ACL denies gets 0x80.
- A zero-length client id with Clean Session 1 is accepted and given a unique id [MQTT-3.1.3-6]; client ids are accepted up to \`max_client_id_length\` (default 65535), beyond it CONNACK 0x02 [MQTT-3.1.3-9].
- Wildcard subscriptions are supported [MQTT-3.8.3-2]; a retained QoS 0 message is stored [MQTT-3.3.1-7] (SHOULD).
- QoS 0 messages are not queued for offline sessions (MAY, [MQTT-3.1.2-5]).
- Overlapping subscriptions get one copy, at the highest granted QoS [MQTT-3.3.5-1].
- An acknowledgement for a packet id the server has not sent is ignored, not a protocol violation.
- A PUBACK is held until the message is stored (Redis) and delivered, so PUBACKs and PUBRECs of interleaved QoS 1 and 2 PUBLISHes can leave in a different order from each other; each kind keeps its order [MQTT-4.6.0-2] [MQTT-4.6.0-3].
- Sessions do not expire (3.1.1 has no expiry); Clean Session 1 ends them.

## Statements

| Statement | Requirement (summary) | Test (file: name) | memory | redis | two-nodes |
|---|---|---|---|---|---|
${rows.join('\n')}
`
  return { summary, doc }
}

function render5(c, rows, asRecorded) {
  const summary = `${c.tested} of the ${c.listed} normative statements of MQTT 5.0 chapters 1-4 listed here are tested: ${c.passing} pass in all three modes, ${c.failing} fail in at least one${asRecorded ? '' : ' (or are not as recorded)'}; ${c.open} are not tested yet, ${c.untestable} cannot be tested from outside or concern features Culex does not have, ${c.client} bind only the Client.`
  return { summary, doc: V5_TEXT(summary, rows) }
}
