/** Unknown CULEX_* environment variables are reported with the nearest setting (config/env-names.ts); pure. */
import { describe, expect, it } from 'vitest'
import { unknownEnvironment } from '../../src/config/env-names.js'

describe('unknown CULEX_* environment variables', () => {
  it('names a typo and the variable meant', () => {
    expect(unknownEnvironment({ CULEX_MQTT_PROT: '1884', CULEX_REDIS_ULR: 'redis://127.0.0.1:6379' })).toEqual([
      'CULEX_MQTT_PROT is not a Culex setting and is ignored (did you mean CULEX_MQTT_PORT?)',
      'CULEX_REDIS_ULR is not a Culex setting and is ignored (did you mean CULEX_REDIS_URL?)',
    ])
  })

  it('suggests the settings whose names end with a short name, none for a name far from all', () => {
    expect(unknownEnvironment({ CULEX_TLS_CERTS: 'x' })).toEqual(['CULEX_TLS_CERTS is not a Culex setting and is ignored (did you mean CULEX_TLS_CERT?)'])
    expect(unknownEnvironment({ CULEX_PORT: '1884' })).toEqual([
      'CULEX_PORT is not a Culex setting and is ignored (did you mean CULEX_MQTT_PORT or CULEX_WS_PORT or CULEX_HTTP_PORT or CULEX_TLS_PORT?)',
    ])
    expect(unknownEnvironment({ CULEX_ANONYMOUS: 'true' })).toEqual(['CULEX_ANONYMOUS is not a Culex setting and is ignored (did you mean CULEX_ALLOW_ANONYMOUS?)'])
    expect(unknownEnvironment({ CULEX_SOMETHING_ELSE_ENTIRELY: '1' })).toEqual(['CULEX_SOMETHING_ELSE_ENTIRELY is not a Culex setting and is ignored'])
    // not taken for a test knob by its suffix
    expect(unknownEnvironment({ CULEX_DELIVERY_BUFER_MESSAGES: '500' })).toEqual([
      'CULEX_DELIVERY_BUFER_MESSAGES is not a Culex setting and is ignored (did you mean CULEX_DELIVERY_BUFFER_MESSAGES?)',
    ])
  })

  it('says nothing of settings, other variables, other prefixes, Kubernetes service links or the repository test knobs', () => {
    expect(
      unknownEnvironment({
        CULEX_MQTT_PORT: '1883',
        CULEX_ADMIN_TOKEN: 'x'.repeat(16),
        CULEX_HOME: '/opt/culex',
        CULEX_SYSTEM_BIN_DIRS: '/usr/sbin',
        PATH: '/usr/bin',
        CULEXFOO: '1',
        CULEX_PORT: 'tcp://10.0.0.1:1883',
        CULEX_SERVICE_HOST: '10.0.0.1',
        CULEX_SERVICE_PORT_MQTT: '1883',
        CULEX_PORT_1883_TCP_ADDR: '10.0.0.1',
        CULEX_CHAOS: '1',
        CULEX_FUZZ_SEED: '7',
        CULEX_REDIS_GAP_LONG: '1',
        CULEX_SESSION_END_ROUNDS: '1000',
        CULEX_RM_RESUME_MESSAGES: '20000',
      }),
    ).toEqual([])
  })
})
