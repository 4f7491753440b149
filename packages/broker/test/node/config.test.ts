/** Config loading is pure: file < environment < flags, one schema, errors name the key. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config/load.js'

const dir = mkdtempSync(join(tmpdir(), 'culex-config-'))
const file = (name: string, text: string): string => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
const problems = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('config', () => {
  it('has the documented defaults: single node in memory on 1883/8080/9100', () => {
    const c = loadConfig()
    expect(c).toMatchObject({ mqtt_port: 1883, ws_port: 8080, ws_path: '/mqtt', http_port: 9100, log_level: 'info', grace_period_ms: 10000 })
    expect(c.redis_url).toBeUndefined()
    expect(c.max_client_id_length).toBeGreaterThan(23)
  })

  it('takes file < env < flags', () => {
    const yaml = file('a.yaml', 'mqtt_port: 1000\nws_port: 2000\nhttp_port: 3000\n')
    const c = loadConfig({ file: yaml, env: { CULEX_WS_PORT: '2001', CULEX_HTTP_PORT: '3001' }, flags: { http_port: '3002' } })
    expect([c.mqtt_port, c.ws_port, c.http_port]).toEqual([1000, 2001, 3002])
  })

  it('reads JSON files too', () => {
    expect(loadConfig({ file: file('a.json', '{"node_id":"n1","redis_url":"redis://127.0.0.1:6379"}') })).toMatchObject({
      node_id: 'n1',
      redis_url: 'redis://127.0.0.1:6379',
    })
  })

  it('names the key and source of an out-of-range port', () => {
    expect(problems(() => loadConfig({ env: { CULEX_MQTT_PORT: '70000' } }))).toMatch(/mqtt_port \(environment variable CULEX_MQTT_PORT.*<=65535/)
  })

  it('session_expiry_max_s: no cap by default (4294967295), a clear error out of 1..4294967295', () => {
    expect(loadConfig().session_expiry_max_s).toBe(0xffffffff)
    expect(loadConfig({ env: { CULEX_SESSION_EXPIRY_MAX_S: '3600' } }).session_expiry_max_s).toBe(3600)
    expect(problems(() => loadConfig({ flags: { session_expiry_max_s: '0' } }))).toMatch(/session_expiry_max_s \(flag --session-expiry-max-s.*at least 1 second \(4294967295 = no cap\)/)
    expect(problems(() => loadConfig({ flags: { session_expiry_max_s: '4294967296' } }))).toMatch(/session_expiry_max_s.*at most 4294967295 \(= no cap\)/)
    expect(problems(() => loadConfig({ flags: { session_expiry_max_s: '1.5' } }))).toMatch(/session_expiry_max_s.*whole number of seconds/)
    expect(problems(() => loadConfig({ flags: { session_expiry_max_s: 'soon' } }))).toMatch(/session_expiry_max_s.*number of seconds/)
  })

  it('response_information: culex/response/%c by default, empty = off, a clear error for a wildcard, a $ topic or another placeholder', () => {
    expect(loadConfig().response_information).toBe('culex/response/%c')
    expect(loadConfig({ flags: { response_information: '' } }).response_information).toBe('')
    expect(loadConfig({ flags: { response_information: 'replies/%c/' } }).response_information).toBe('replies/%c/')
    expect(problems(() => loadConfig({ flags: { response_information: 'r/+/%c' } }))).toMatch(/response_information.*must not contain \+ # or NUL/)
    expect(problems(() => loadConfig({ flags: { response_information: '$SYS/%c' } }))).toMatch(/response_information.*must not start with \$/)
    expect(problems(() => loadConfig({ flags: { response_information: 'r/%u' } }))).toMatch(/response_information.*only placeholder is %c/)
  })

  it('refuses an unknown key in the file', () => {
    expect(problems(() => loadConfig({ file: file('b.yaml', 'mqtt_prot: 1883\n') }))).toMatch(/unknown key.*"mqtt_prot"/)
  })

  it('refuses an unparsable Redis URL', () => {
    expect(problems(() => loadConfig({ flags: { redis_url: 'not a url' } }))).toMatch(/redis_url \(flag --redis-url.*redis:\/\//)
  })

  it('refuses a non-numeric value and a bad log level', () => {
    const msg = problems(() => loadConfig({ env: { CULEX_HTTP_PORT: 'abc', CULEX_LOG_LEVEL: 'loud' } }))
    expect(msg).toMatch(/http_port/)
    expect(msg).toMatch(/log_level/)
  })

  it('says when the file cannot be read or parsed', () => {
    expect(problems(() => loadConfig({ file: join(dir, 'missing.yaml') }))).toMatch(/cannot read/)
    expect(problems(() => loadConfig({ file: file('c.json', '{oops') }))).toMatch(/cannot parse/)
  })
})
