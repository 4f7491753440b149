// The REST API with the admin token typed once per browser session (sessionStorage).
import { useEffect, useState } from './vendor/htm-preact.js'

const TOKEN_KEY = 'culex-admin-token'

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
}

/** call /api/v1<path>; rejects with the API's error message; a 401 logs out */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { authorization: `Bearer ${token.get()}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = await res.json().catch(() => ({}))
  if (res.status === 401) {
    token.clear()
    window.dispatchEvent(new Event('culex-logout'))
  }
  if (!res.ok) throw new Error(json.error || `${res.status} ${res.statusText}`)
  return json
}

export const q = (params) => {
  const s = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v))
  return s.toString()
}

/** poll fn every ms; returns [data, error] */
export function usePoll(fn, ms, deps = []) {
  const [state, setState] = useState([undefined, undefined])
  useEffect(() => {
    let stop = false
    let timer
    const tick = async () => {
      try {
        const data = await fn()
        if (!stop) setState([data, undefined])
      } catch (err) {
        if (!stop) setState((s) => [s[0], err.message])
      }
      if (!stop) timer = setTimeout(tick, ms)
    }
    tick()
    return () => {
      stop = true
      clearTimeout(timer)
    }
  }, deps)
  return state
}

