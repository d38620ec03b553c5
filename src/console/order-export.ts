import type { OrderView } from '../orders/order-fold.js'

/** The most orders one export holds; the page and the file's name say so when a list is longer. */
export const maxExportRows = 10_000

/** The CSV's columns: the fields of an order as the admin API shows it, amounts in integer minor units. */
export const csvColumns = [
  'orderId', 'status', 'needsReview', 'anomalies', 'expectedAmount', 'expectedCurrency', 'paidAmount', 'refundedAmount',
  'currency', 'gateway', 'gatewayTradeNo', 'duplicateCount', 'version', 'lastPosition', 'firstSeenAt', 'updatedAt'
] as const satisfies ReadonlyArray<keyof OrderView>

/**
 * One CSV cell (RFC 4180). A cell a spreadsheet would read as a formula
 * (starting with = + - @, or a tab or carriage return) gets a leading `'`,
 * so a transaction id a gateway chose cannot run in the admin's spreadsheet.
 */
export function csvCell (value: string | number | boolean | null): string {
  if (value === null) return ''
  let text = String(value)
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function csvValue (order: OrderView, column: typeof csvColumns[number]): string | number | boolean | null {
  const value = order[column]
  return Array.isArray(value) ? value.join(' ') : value
}

/** The orders as CSV with a header line, CRLF line ends. */
export function ordersCsv (orders: readonly OrderView[]): string {
  const lines = [csvColumns.join(',')]
  for (const order of orders) lines.push(csvColumns.map(column => csvCell(csvValue(order, column))).join(','))
  return lines.join('\r\n') + '\r\n'
}

/** The orders as NDJSON: one order per line, as GET /admin/orders/:id answers it. */
export function ordersNdjson (orders: readonly OrderView[]): string {
  return orders.map(order => JSON.stringify(order) + '\n').join('')
}
