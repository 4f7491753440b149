// Live parts: the message-rate chart (uPlot) and a topic view subscribed over MQTT/WebSocket (MQTT.js).
import { html, useEffect, useRef, useState } from './vendor/htm-preact.js'
import uPlot from './vendor/uplot.js'

const POINTS = 150

/** messages in/out per second, whole cluster, one point per poll of the overview */
export function RateChart({ nodes }) {
  const box = useRef(null)
  const plot = useRef(null)
  const data = useRef([[], [], []])
  useEffect(() => {
    plot.current = new uPlot(
      {
        width: Math.max(300, box.current.clientWidth - 10),
        height: 180,
        series: [{}, { label: 'in /s', stroke: '#2563eb', width: 2 }, { label: 'out /s', stroke: '#16a34a', width: 2 }],
        axes: [{}, { size: 50 }],
      },
      data.current,
      box.current,
    )
    const resize = () => plot.current.setSize({ width: Math.max(300, box.current.clientWidth - 10), height: 180 })
    window.addEventListener('resize', resize)
    return () => {
      window.removeEventListener('resize', resize)
      plot.current.destroy()
    }
  }, [])
  useEffect(() => {
    if (!plot.current || nodes.length === 0) return
    const [t, inn, out] = data.current
    t.push(Date.now() / 1000)
    inn.push(nodes.reduce((s, n) => s + (n.rate_in ?? 0), 0))
    out.push(nodes.reduce((s, n) => s + (n.rate_out ?? 0), 0))
    if (t.length > POINTS) for (const a of data.current) a.shift()
    plot.current.setData(data.current)
  }, [nodes])
  return html`<div ref=${box} id="rates"></div>`
}

/** where the MQTT WebSocket listener is: ?mqtt=URL, else HAProxy's WSS port beside its API port, else the node's */
function defaultUrl() {
  const given = new URLSearchParams(location.search).get('mqtt')
  if (given) return given
  return location.protocol === 'https:' ? `wss://${location.hostname}:8443/mqtt` : `ws://${location.hostname}:8080/mqtt`
}

export function LiveView() {
  const [url, setUrl] = useState(defaultUrl())
  const [status, setStatus] = useState('not connected')
  const [messages, setMessages] = useState([])
  const client = useRef(null)
  useEffect(() => () => client.current?.end(true), [])
  const start = (e) => {
    e.preventDefault()
    const f = e.target.elements
    client.current?.end(true)
    setMessages([])
    const opts = { reconnectPeriod: 2000, connectTimeout: 8000, clean: true }
    if (f.username.value) Object.assign(opts, { username: f.username.value, password: f.password.value })
    const c = (client.current = window.mqtt.connect(f.url.value, opts))
    setStatus('connecting')
    c.on('connect', () => {
      c.subscribe(f.filter.value || '#', { qos: 0 }, (err, granted) => {
        setStatus(err || granted?.[0]?.qos === 128 ? `subscription refused: ${f.filter.value}` : `subscribed to ${f.filter.value}`)
      })
    })
    c.on('message', (topic, payload) => setMessages((m) => [`${new Date().toLocaleTimeString()} ${topic}: ${payload.toString()}`, ...m].slice(0, 200)))
    c.on('error', (err) => setStatus(`error: ${err.message}`))
    c.on('close', () => setStatus((s) => (s.startsWith('error') ? s : 'disconnected')))
  }
  return html`<section>
    <h2>Live topic view</h2>
    <form class="row" onSubmit=${start}>
      <input name="url" id="live-url" value=${url} onInput=${(e) => setUrl(e.target.value)} size="28" />
      <input name="username" placeholder="MQTT user (optional)" size="14" />
      <input name="password" type="password" placeholder="password" size="10" />
      <input name="filter" id="live-filter" value="#" size="12" />
      <button id="live-go">Watch</button>
    </form>
    <p class="muted" id="live-status">${status}</p>
    <ul class="messages" id="live-messages">${messages.map((m, i) => html`<li key=${messages.length - i}>${m}</li>`)}</ul>
  </section>`
}
