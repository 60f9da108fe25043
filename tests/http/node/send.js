// Sends one call of each type through Segment's own Node library, unchanged, to the server
// under test, then flushes. Usage: node send.js URL WRITE_KEY
// Prints one JSON line: the status of every HTTP response the library got, and its errors.
'use strict'

const { Analytics } = require('@segment/analytics-node')

async function main () {
  const [host, writeKey] = process.argv.slice(2)
  const analytics = new Analytics({ writeKey, host, flushInterval: 50, maxRetries: 3 })
  const statuses = []
  const errors = []
  analytics.on('http_response', (response) => statuses.push(response.status))
  analytics.on('error', (error) => errors.push(String(error.reason || error.code || error)))

  analytics.identify({ userId: 'grace', anonymousId: 'node-anon', traits: { email: 'grace@example.com', plan: 'team' } })
  analytics.track({ userId: 'grace', event: 'Order Completed', properties: { revenue: 99 } })
  analytics.page({ userId: 'grace', category: 'Docs', name: 'Home', properties: { url: 'https://shop.example/' } })
  analytics.screen({ userId: 'grace', name: 'Settings' })
  analytics.group({ userId: 'grace', groupId: 'globex', traits: { name: 'Globex' } })
  analytics.alias({ userId: 'grace', previousId: 'node-visitor' })
  await analytics.closeAndFlush({ timeout: 20000 })

  console.log(JSON.stringify({ statuses, errors }))
  process.exitCode = errors.length ? 1 : 0
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 2
})
