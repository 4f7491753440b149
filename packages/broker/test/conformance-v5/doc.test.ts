/**
 * docs/conformance-v5.md stays current with the MQTT 5 suite (the checks: ../conformance/doc-check.ts).
 * Statements Culex fails are rows showing "**fail**" in the modes statements.json records, with the
 * reason; their tests run as `it.fails` (modes.ts). When this fails, run `npm run conformance`.
 */
import { checkConformanceDoc } from '../conformance/doc-check.js'

checkConformanceDoc({
  dir: new URL('./', import.meta.url),
  page: 'docs/conformance-v5.md',
  readme: { start: '<!-- conformance-v5:start -->', end: '<!-- conformance-v5:end -->' },
  statuses: ['test', 'elsewhere', 'untestable', 'client', 'open'],
  knownFailures: true,
})
