// Loads Segment's browser library, @segment/analytics-next, unchanged, in a jsdom page of
// PAGE_ORIGIN with only `writeKey` and `cdnURL` (the server under test), sends one call of each
// type and waits for each call's delivery. Usage: node browser.js SERVER_URL WRITE_KEY PAGE_ORIGIN
//
// jsdom has no `fetch`, and Node's own neither sends `Origin` nor applies CORS, so the page's
// `fetch` below does what a browser's does for a cross-origin request: it sends `Origin`,
// preflights a request with a header that is not CORS-safelisted (analytics.js adds
// `Authorization`), and fails ("Failed to fetch") when an answer does not allow the page to read it.
// Nothing leaves the machine: every TCP connection but to the server is refused, and jsdom loads
// no resource (scripts, frames, images); every attempt is reported.
//
// Prints one JSON line: every request the page made (preflights included), every refused
// connection and resource, the calls' delivery, and the library's errors; or, when the library
// fails to load, why (`loadError`), and the requests made until then.
'use strict'

const net = require('node:net')
const { JSDOM, ResourceLoader } = require('jsdom')

const [serverUrl, writeKey, pageOrigin] = process.argv.slice(2)
const server = new URL(serverUrl)
const report = { requests: [], refusedConnections: [], refusedResources: [], delivered: {}, errors: [] }

// -- no connection but to the server -------------------------------------------------------------
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0]
  const options = typeof first === 'object' && first !== null
    ? first
    : { port: first, host: typeof args[1] === 'string' ? args[1] : 'localhost' }
  if (options.path === undefined &&
      !(options.host === server.hostname && String(options.port) === server.port)) {
    report.refusedConnections.push(`${options.host}:${options.port}`)
    process.nextTick(() => this.destroy(new Error(`connection to ${options.host}:${options.port} refused by the test`)))
    return this
  }
  return connect.apply(this, args)
}

class NoResources extends ResourceLoader {
  fetch (url) {
    report.refusedResources.push(url)
    return Promise.reject(new Error(`resource ${url} refused by the test`))
  }
}

// -- the page ------------------------------------------------------------------------------------
const dom = new JSDOM('<!doctype html><html><head><title>Shop</title></head><body></body></html>', {
  url: `${pageOrigin}/checkout?step=2`,
  referrer: `${pageOrigin}/cart`,
  resources: new NoResources(),
  pretendToBeVisual: true
})
const { window } = dom

// What a browser's fetch checks for a cross-origin request (the Fetch standard, reduced to what
// analytics.js does: no credentials, no redirects).
const SAFE_HEADERS = new Set(['accept', 'accept-language', 'content-language', 'content-type'])
const SAFE_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'])
const nodeFetch = globalThis.fetch

function failed (why) {
  report.errors.push(`fetch: ${why}`)
  return new TypeError('Failed to fetch')
}

async function pageFetch (input, init = {}) {
  const url = new URL(String(input), window.location.href)
  const method = (init.method || 'GET').toUpperCase()
  const headers = new Headers(init.headers || {})
  const crossOrigin = url.origin !== window.location.origin
  if (crossOrigin) {
    const unsafe = [...headers.keys()].filter((name) => !SAFE_HEADERS.has(name) ||
      (name === 'content-type' && !SAFE_TYPES.has(headers.get(name).split(';')[0].trim().toLowerCase())))
    if (!['GET', 'HEAD', 'POST'].includes(method) || unsafe.length) {
      const asked = unsafe.sort().join(',')
      const preflight = await nodeFetch(url, {
        method: 'OPTIONS',
        headers: { Origin: window.location.origin, 'Access-Control-Request-Method': method, ...(asked ? { 'Access-Control-Request-Headers': asked } : {}) }
      })
      const allowedHeaders = (preflight.headers.get('access-control-allow-headers') || '').toLowerCase().split(',').map((h) => h.trim())
      const allowedMethods = (preflight.headers.get('access-control-allow-methods') || '').toUpperCase().split(',').map((m) => m.trim())
      report.requests.push({ method: 'OPTIONS', url: url.href, origin: window.location.origin, requestHeaders: asked, status: preflight.status })
      if (!preflight.ok) throw failed(`preflight of ${url.pathname}: ${preflight.status}`)
      if (preflight.headers.get('access-control-allow-origin') !== window.location.origin) throw failed(`preflight of ${url.pathname}: origin not allowed`)
      if (!['GET', 'HEAD', 'POST'].includes(method) && !allowedMethods.includes(method)) throw failed(`preflight of ${url.pathname}: method ${method} not allowed`)
      const missing = unsafe.filter((name) => name !== 'authorization' ? !allowedHeaders.includes(name) && !allowedHeaders.includes('*') : !allowedHeaders.includes(name))
      if (missing.length) throw failed(`preflight of ${url.pathname}: headers ${missing} not allowed`)
    }
    headers.set('Origin', window.location.origin)
  }
  const response = await nodeFetch(url, { method, headers, body: init.body })
  report.requests.push({
    method,
    url: url.href,
    origin: headers.get('origin'),
    contentType: headers.get('content-type'),
    authorization: headers.has('authorization'),
    body: typeof init.body === 'string' ? JSON.parse(init.body) : null,
    status: response.status
  })
  if (crossOrigin && response.headers.get('access-control-allow-origin') !== window.location.origin) {
    throw failed(`${method} ${url.pathname}: the answer (${response.status}) is not readable by ${window.location.origin}`)
  }
  return response
}

// The library reads the page through these globals, as it would in a browser.
window.fetch = pageFetch
for (const name of ['window', 'document', 'location', 'navigator', 'localStorage', 'sessionStorage', 'screen',
  'history', 'HTMLElement', 'Node', 'Event', 'CustomEvent', 'self']) {
  Object.defineProperty(globalThis, name, { value: name === 'self' ? window : window[name], configurable: true, writable: true })
}
Object.defineProperty(globalThis, 'fetch', { value: pageFetch, configurable: true, writable: true })

async function main () {
  const { AnalyticsBrowser } = require('@segment/analytics-next')
  let analytics
  try {
    [analytics] = await AnalyticsBrowser.load({ writeKey, cdnURL: serverUrl })
  } catch (error) {
    report.loadError = String((error && error.message) || error)
    console.log(JSON.stringify(report))
    return
  }
  analytics.on('error', (error) => report.errors.push(`${error.code}: ${error.reason}`))

  const calls = {
    identify: () => analytics.identify('linus', { email: 'linus@example.com', plan: 'free' }),
    track: () => analytics.track('Order Completed', { revenue: 42 }),
    page: () => analytics.page('Docs', 'Checkout', { step: 2 }),
    screen: () => analytics.screen('Mobile', 'Settings'),
    group: () => analytics.group('initech', { name: 'Initech' }),
    alias: () => analytics.alias('linus', 'browser-visitor')
  }
  report.anonymousId = analytics.user().anonymousId()
  for (const [type, call] of Object.entries(calls)) {
    const ctx = await call()
    const failure = ctx.failedDelivery()
    report.delivered[type] = failure ? String(failure.reason) : true
  }
  report.cookies = window.document.cookie
  report.library = analytics.VERSION
  console.log(JSON.stringify(report))
  process.exitCode = report.errors.length ? 1 : 0
  window.close()
}

main().catch((error) => {
  console.error(error)
  console.log(JSON.stringify(report))
  process.exitCode = 2
})
