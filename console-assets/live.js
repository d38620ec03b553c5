// paynotify console: live parts of a page (no inline script: the CSP allows only this file).
// Every element with data-live-src="<url>" is re-fetched after each commit the server reports
// on /console/live, and its content replaced with the fragment the URL answers. An element with
// data-live-announce="<id>" also writes the fragment's data-announce text, when it changed, into
// that element (an aria-live region), so a screen reader hears what arrived.
'use strict'
;(function () {
  const parts = Array.prototype.slice.call(document.querySelectorAll('[data-live-src]'))
  if (parts.length === 0 || typeof window.EventSource !== 'function') return
  const inFlight = new WeakMap()
  const again = new WeakMap()

  function announce (element) {
    const regionId = element.getAttribute('data-live-announce')
    if (!regionId) return
    const region = document.getElementById(regionId)
    const source = element.querySelector('[data-announce]')
    if (region === null || source === null) return
    const text = source.getAttribute('data-announce')
    if (text && element.getAttribute('data-live-last') !== text) {
      element.setAttribute('data-live-last', text)
      region.textContent = text
    }
  }

  function refresh (element) {
    // One fetch per element at a time; a commit meanwhile asks for one more when it ends.
    if (inFlight.get(element)) {
      again.set(element, true)
      return
    }
    inFlight.set(element, true)
    fetch(element.getAttribute('data-live-src'), { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (response) { return response.ok && !response.redirected ? response.text() : null })
      .then(function (text) {
        if (text !== null) {
          element.innerHTML = text
          announce(element)
        }
      }, function () {})
      .then(function () {
        inFlight.set(element, false)
        if (again.get(element)) {
          again.set(element, false)
          refresh(element)
        }
      })
  }

  parts.forEach(function (element) {
    const source = element.querySelector('[data-announce]')
    if (source !== null) element.setAttribute('data-live-last', source.getAttribute('data-announce') || '')
  })

  const events = new window.EventSource('/console/live')
  let lost = false
  events.addEventListener('commit', function () { parts.forEach(refresh) })
  events.addEventListener('error', function () { lost = true })
  // Back after a lost connection: commits may have been missed meanwhile.
  events.addEventListener('open', function () {
    if (lost) parts.forEach(refresh)
    lost = false
  })
  window.addEventListener('pagehide', function () { events.close() })
})()
