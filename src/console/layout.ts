import { html } from 'ghtml'
import type { ConsoleSession } from './session.js'

/**
 * The console's one page shell. Every value from outside goes through
 * ghtml's `html`, which escapes each `${…}`; `!${…}` (no escaping) is only
 * ever given HTML that `html` built. No inline script or style anywhere:
 * the Content-Security-Policy (plugin.ts) allows only the console's own files.
 */

export const consoleSections = [
  { key: 'overview', label: 'Overview', href: '/console/' },
  { key: 'orders', label: 'Orders', href: '/console/orders' },
  { key: 'review', label: 'Review queue', href: '/console/review' },
  { key: 'events', label: 'Event log', href: '/console/events' },
  { key: 'outbound', label: 'Outbound', href: '/console/outbound' },
  { key: 'refusals', label: 'Refusals', href: '/console/refusals' }
] as const
export type ConsoleSection = typeof consoleSections[number]['key']

export interface PageOptions {
  title: string
  /** The section the page belongs to, marked in the navigation; none on the sign-in page. */
  section?: ConsoleSection
  /** Signed in: the navigation and the sign-out form (with its CSRF token) are shown. */
  session?: ConsoleSession
  /** Scripts of console-assets/ this page loads (deferred), e.g. `live.js`. */
  scripts?: readonly string[]
  /** The page's main content, built with `html`. */
  body: string
}

export function page (options: PageOptions): string {
  const { session, section } = options
  const nav = session === undefined
    ? ''
    : html`<nav aria-label="Sections"><ul>!${consoleSections.map(item => html`<li><a href="${item.href}"!${item.key === section ? ' aria-current="page"' : ''}>${item.label}</a></li>`).join('')}</ul>
<form method="post" action="/console/sign-out" class="sign-out">!${csrfField(session)}<button type="submit">Sign out</button></form></nav>`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · paynotify</title>
<link rel="stylesheet" href="/console/assets/console.css">
!${(options.scripts ?? []).map(name => html`<script src="/console/assets/${name}" defer></script>`).join('')}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/console/">paynotify</a>!${nav}</header>
<main id="main" tabindex="-1">
<h1>${options.title}</h1>
!${options.body}
</main>
</body>
</html>
`
}

/** The hidden field every state-changing form of a session carries. */
export function csrfField (session: ConsoleSession): string {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}">`
}

/** A message box: `error` for what went wrong, `note` for what happened. */
export function notice (kind: 'error' | 'note', text: string): string {
  return html`<p class="${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`
}
