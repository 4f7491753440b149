/**
 * docs/conformance.md stays current with the MQTT 3.1.1 suite (the checks: doc-check.ts).
 * When this fails, run `npm run conformance`.
 */
import { checkConformanceDoc } from './doc-check.js'

checkConformanceDoc({
  dir: new URL('./', import.meta.url),
  page: 'docs/conformance.md',
  readme: { start: '<!-- conformance:start -->', end: '<!-- conformance:end -->' },
  statuses: ['test', 'elsewhere', 'untestable', 'client'],
  knownFailures: false,
})
