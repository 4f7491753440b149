/* global mqtt */
// Connects MQTT.js to a Culex cluster over wss://host:8443/mqtt (HAProxy terminates TLS).
// Query parameters fill the form and connect at once: ?url=wss://127.0.0.1:8443/mqtt&topic=demo/%23
const params = new window.URLSearchParams(window.location.search)
const $ = (id) => document.getElementById(id)
const host = window.location.hostname || '127.0.0.1'
$('url').value = params.get('url') || `wss://${host}:8443/mqtt`
$('topic').value = params.get('topic') || 'demo/#'
$('username').value = params.get('username') || ''

let client

function setStatus(text) {
  $('status').textContent = text
}

function show(topic, payload) {
  const li = document.createElement('li')
  li.textContent = `${topic}: ${payload}`
  $('messages').appendChild(li)
}

function connect() {
  if (client) client.end(true)
  const options = { clientId: `culex-browser-${Math.random().toString(16).slice(2, 10)}`, reconnectPeriod: 2000 }
  if ($('username').value) {
    options.username = $('username').value
    options.password = $('password').value
  }
  setStatus('connecting')
  client = mqtt.connect($('url').value, options)
  client.on('connect', () => {
    client.subscribe($('topic').value, { qos: 1 }, (err) => setStatus(err ? `subscribe failed: ${err.message}` : 'connected'))
  })
  client.on('reconnect', () => setStatus('reconnecting'))
  client.on('close', () => setStatus('disconnected'))
  client.on('error', (err) => setStatus(`error: ${err.message}`))
  client.on('message', (topic, payload) => show(topic, new window.TextDecoder().decode(payload)))
}

$('connect').addEventListener('submit', (e) => {
  e.preventDefault()
  connect()
})
$('publish').addEventListener('submit', (e) => {
  e.preventDefault()
  const topic = $('topic').value.replace(/[#+].*$/, 'browser')
  if (client) client.publish(topic, $('message').value, { qos: 1 })
})

if (params.has('url') || params.has('connect')) connect()
