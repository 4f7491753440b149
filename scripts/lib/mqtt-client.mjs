// An MQTT.js client of the scripts, connected (no reconnects: a script wants the first error).
import mqtt from 'mqtt'

export const connectMqtt = (url) =>
  new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0 })
    c.once('connect', () => resolve(c))
    c.once('error', reject)
  })
