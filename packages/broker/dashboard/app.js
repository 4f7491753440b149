// Culex dashboard: login, cluster overview with live rate charts, and the panels of views.js / live.js.
import { html, render, useEffect, useState } from './vendor/htm-preact.js'
import { api, token, usePoll } from './api.js'
import { Clients, Publish, Retained, Sessions } from './views.js'
import { LiveView, RateChart } from './live.js'

function Login({ onLogin }) {
  const [error, setError] = useState('')
  const submit = async (e) => {
    e.preventDefault()
    token.set(e.target.elements.token.value.trim())
    try {
      await api('/nodes')
      onLogin()
    } catch (err) {
      token.clear()
      setError(err.message)
    }
  }
  return html`<form class="login" onSubmit=${submit}>
    <h2>Culex dashboard</h2>
    <label>Admin token <input id="token" name="token" type="password" autocomplete="current-password" autofocus /></label>
    <button id="login">Sign in</button>
    <p class="muted">The node's admin_token; kept for this browser session only.</p>
    ${error && html`<p class="error" id="login-error">${error}</p>`}
  </form>`
}

const fmt = (n) => (n === undefined ? '–' : Number(n).toLocaleString('en'))
const uptime = (s) => (s === undefined ? '–' : s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`)

function Overview() {
  const [data, error] = usePoll(() => api('/nodes'), 2000)
  const nodes = data?.nodes ?? []
  const live = nodes.filter((n) => n.state === 'live')
  const sum = (k) => live.reduce((s, n) => s + (n[k] ?? 0), 0)
  return html`<section class="wide">
    <h2>Cluster</h2>
    ${error && html`<p class="error">${error}</p>`}
    <div class="tiles">
      <div class="tile"><b id="live-nodes">${live.length}</b><span>live nodes of ${nodes.length}</span></div>
      <div class="tile"><b>${fmt(sum('clients'))}</b><span>clients</span></div>
      <div class="tile"><b>${fmt(Math.round(sum('rate_in')))}</b><span>messages in /s</span></div>
      <div class="tile"><b>${fmt(Math.round(sum('rate_out')))}</b><span>messages out /s</span></div>
      <div class="tile"><b>${fmt(sum('dropped_total'))}</b><span>dropped (QoS 0)</span></div>
      <div class="tile"><b>${fmt(sum('denied_total'))}</b><span>publishes denied</span></div>
      <div class="tile"><b>${fmt(sum('auth_failures_total'))}</b><span>failed logins</span></div>
    </div>
    <${RateChart} nodes=${live} />
    <table id="nodes">
      <thead><tr><th>node</th><th>state</th><th>version</th><th class="num">uptime</th><th class="num">clients</th><th class="num">in /s</th><th class="num">out /s</th><th class="num">in total</th><th class="num">out total</th><th class="num">dropped</th><th class="num">denied</th></tr></thead>
      <tbody>
        ${nodes.map(
          (n) => html`<tr class="node-row" key=${n.id}>
            <td>${n.id}</td><td class=${`state-${n.state}`}>${n.state}</td><td>${n.version ?? '–'}</td><td class="num">${uptime(n.uptime_s)}</td>
            <td class="num">${fmt(n.clients)}</td><td class="num">${fmt(n.rate_in)}</td><td class="num">${fmt(n.rate_out)}</td>
            <td class="num">${fmt(n.messages_in_total)}</td><td class="num">${fmt(n.messages_out_total)}</td><td class="num">${fmt(n.dropped_total)}</td><td class="num">${fmt(n.denied_total)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`
}

function App() {
  const [signedIn, setSignedIn] = useState(!!token.get())
  useEffect(() => {
    const out = () => setSignedIn(false)
    window.addEventListener('culex-logout', out)
    return () => window.removeEventListener('culex-logout', out)
  }, [])
  if (!signedIn) return html`<${Login} onLogin=${() => setSignedIn(true)} />`
  const logout = () => {
    token.clear()
    setSignedIn(false)
  }
  return html`<header><h1>Culex</h1><span class="muted">${location.host}</span><span class="spacer"></span><button onClick=${logout}>Sign out</button></header>
    <main>
      <${Overview} />
      <${Clients} />
      <${Sessions} />
      <${Publish} />
      <${LiveView} />
      <${Retained} />
    </main>`
}

const root = document.getElementById('app')
root.textContent = '' // the 'loading…' placeholder
render(html`<${App} />`, root)
