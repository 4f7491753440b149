// Dashboard panels over the REST API: clients (kick), sessions (end), retained messages (delete), publish.
import { html, useState } from './vendor/htm-preact.js'
import { api, q, usePoll } from './api.js'

const enc = encodeURIComponent

function Problem({ text }) {
  return text ? html`<p class="error">${text}</p>` : null
}

export function Clients() {
  const [filter, setFilter] = useState('')
  const [v, setV] = useState(0)
  const [action, setAction] = useState('')
  const [data, error] = usePoll(() => api(`/clients?${q({ client_id: filter, limit: 200 })}`), 3000, [filter, v])
  const kick = async (id) => {
    try {
      await api(`/clients/${enc(id)}`, { method: 'DELETE' })
      setAction(`disconnected ${id}`)
    } catch (err) {
      setAction(err.message)
    }
    setV(v + 1)
  }
  return html`<section>
    <h2>Clients <span class="muted" id="clients-total">${data ? data.total : ''}</span></h2>
    <div class="row"><input placeholder="client id starts with" value=${filter} onInput=${(e) => setFilter(e.target.value)} /><span class="muted">${action}</span></div>
    <${Problem} text=${error} />
    <div class="scroll"><table id="clients">
      <thead><tr><th>client id</th><th>user</th><th>node</th><th>address</th><th class="num">subs</th><th class="num">queued B</th><th></th></tr></thead>
      <tbody>${(data?.items ?? []).map(
        (c) => html`<tr key=${c.id + c.node} data-client=${c.id}>
          <td>${c.id}</td><td>${c.username ?? ''}</td><td>${c.node}</td><td>${c.address ?? ''}</td><td class="num">${c.subscriptions}</td><td class="num">${c.queued_bytes}</td>
          <td><button class="danger kick" onClick=${() => kick(c.id)}>kick</button></td>
        </tr>`,
      )}</tbody>
    </table></div>
  </section>`
}

export function Sessions() {
  const [v, setV] = useState(0)
  const [data, error] = usePoll(() => api('/sessions?limit=200'), 4000, [v])
  const end = async (id) => {
    await api(`/sessions/${enc(id)}`, { method: 'DELETE' }).catch(() => {})
    setV(v + 1)
  }
  return html`<section>
    <h2>Persistent sessions <span class="muted">${data ? data.total : ''}</span></h2>
    <${Problem} text=${error} />
    <div class="scroll"><table id="sessions">
      <thead><tr><th>client id</th><th>online</th><th>node</th><th class="num">subs</th><th class="num">queued</th><th></th></tr></thead>
      <tbody>${(data?.items ?? []).map(
        (s) => html`<tr key=${s.client_id}><td>${s.client_id}</td><td>${s.online ? 'yes' : 'no'}</td><td>${s.node ?? ''}</td><td class="num">${s.subscriptions}</td><td class="num">${s.queued}</td>
          <td><button class="danger" onClick=${() => end(s.client_id)}>end</button></td></tr>`,
      )}</tbody>
    </table></div>
  </section>`
}

export function Retained() {
  const [filter, setFilter] = useState('#')
  const [v, setV] = useState(0)
  const [data, error] = usePoll(() => api(`/retained?${q({ filter: filter || '#', limit: 200 })}`), 5000, [filter, v])
  const remove = async (topic) => {
    await api(`/retained/${topic.split('/').map(enc).join('/')}`, { method: 'DELETE' }).catch(() => {})
    setV(v + 1)
  }
  return html`<section>
    <h2>Retained messages <span class="muted">${data ? data.total : ''}</span></h2>
    <div class="row"><input placeholder="topic filter" value=${filter} onChange=${(e) => setFilter(e.target.value)} /></div>
    <${Problem} text=${error} />
    <div class="scroll"><table id="retained">
      <thead><tr><th>topic</th><th>payload</th><th class="num">bytes</th><th class="num">QoS</th><th></th></tr></thead>
      <tbody>${(data?.items ?? []).map(
        (m) => html`<tr key=${m.topic}><td>${m.topic}</td><td>${m.encoding === 'utf8' ? m.payload : `(binary, base64) ${m.payload}`}${m.truncated ? '…' : ''}</td>
          <td class="num">${m.size}</td><td class="num">${m.qos}</td><td><button class="danger" onClick=${() => remove(m.topic)}>delete</button></td></tr>`,
      )}</tbody>
    </table></div>
  </section>`
}

export function Publish() {
  const [result, setResult] = useState('')
  const send = async (e) => {
    e.preventDefault()
    const f = e.target.elements
    try {
      const r = await api('/publish', {
        method: 'POST',
        body: { topic: f.topic.value, payload: f.payload.value, qos: Number(f.qos.value), retain: f.retain.checked },
      })
      setResult(`published ${r.bytes} bytes to ${r.topic}${r.acknowledged ? ' (acknowledged)' : ''}`)
    } catch (err) {
      setResult(`error: ${err.message}`)
    }
  }
  return html`<section>
    <h2>Publish</h2>
    <form class="row" id="publish" onSubmit=${send}>
      <input name="topic" id="pub-topic" placeholder="topic" required />
      <input name="payload" id="pub-payload" placeholder="payload" />
      <select name="qos" id="pub-qos"><option value="0">QoS 0</option><option value="1" selected>QoS 1</option><option value="2">QoS 2</option></select>
      <label><input type="checkbox" name="retain" /> retain</label>
      <button id="pub-send">Publish</button>
    </form>
    <p class="muted" id="pub-result">${result}</p>
  </section>`
}
