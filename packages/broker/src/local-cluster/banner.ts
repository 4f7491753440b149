/** What `culex cluster up` prints once everything is up: where each process listens and logs. */
import { join } from 'node:path'
import type { ClusterState } from './state.js'
import type { HaRedis } from './ha-redis.js'
import type { UpOptions } from './up.js'

export function printReady(p: {
  o: UpOptions
  state: ClusterState
  ha: HaRedis | undefined
  certs: { ca: string }
  host: string
  dir: string
  redisDir: string
  redisLog: string
  show: (path: string) => string
  /** where the admin token is (undefined: CULEX_ADMIN_TOKEN) */
  adminTokenFile: string | undefined
}): void {
  const { o, state, ha, certs, host, dir, redisDir, redisLog, show, adminTokenFile } = p
  if (ha) {
    for (const x of ha.procs) o.out(`culex cluster: ${x.spec.name.padEnd(10)} 127.0.0.1:${x.spec.port}  (${x.spec.kind === 'sentinel' ? 'sentinel' : x.spec.port === ha.ports.primary ? 'primary' : 'replica'}; config ${show(x.spec.config)}, log ${show(x.log)})`)
    o.out(`culex cluster: redis   ${state.redis_url}  (nodes follow the primary the sentinels name; AOF in ${show(redisDir)})`)
  } else o.out(`culex cluster: redis   ${state.redis_url}  (AOF in ${show(redisDir)}, log ${show(redisLog)})`)
  for (const n of state.nodes) {
    o.out(`culex cluster: ${n.id.padEnd(8)} mqtt 127.0.0.1:${n.mqtt}  ws 127.0.0.1:${n.ws}/mqtt  http http://127.0.0.1:${n.http}/readyz  (pid ${n.pid}, log ${show(n.log)})`)
  }
  o.out(`culex cluster: MQTT    mqtt://${host}:${o.mqttPort}`)
  o.out(`culex cluster: MQTTS   mqtts://${host}:${o.tlsPort}  (CA ${show(certs.ca)})`)
  o.out(`culex cluster: WSS     wss://${host}:${o.wssPort}/mqtt`)
  o.out(`culex cluster: stats   http://${host}:${o.statsPort}/`)
  o.out(`culex cluster: API     https://${host}:${o.apiPort}/api/v1  dashboard https://${host}:${o.apiPort}/dashboard/  (admin token ${adminTokenFile ? `in ${show(adminTokenFile)}` : 'from CULEX_ADMIN_TOKEN'})`)
  o.out(`culex cluster: anonymous clients ${o.allowAnonymous === true ? 'allowed' : o.allowAnonymous === false ? 'refused' : o.nodeConfig || process.env.CULEX_ALLOW_ANONYMOUS ? 'as the node config / CULEX_ALLOW_ANONYMOUS says' : 'refused (add the first user: culex user add NAME)'}; state in ${show(join(dir, 'cluster.json'))}`)
  o.out(`culex cluster: processes that die are restarted (same id and ports); rolling restart: culex cluster restart --dir ${show(dir)}`)
}
