import { formatMinorUnits } from '../orders/money.js'

/** An order as the merchant registers it before its customer pays. */
export interface OrderToRegister {
  orderId: string
  /** Minor units. */
  amount: number
  currency: string
}

/**
 * Registers orders with POST /orders, a few at a time, as the merchant's
 * checkout does before the gateway ever calls back. Once a service has
 * registered orders it flags a callback for any other order `unknown_order`,
 * so a simulation on a service in use registers its own orders first.
 * Returns one line per order the service refused (201 and 200 are accepted).
 */
export async function registerOrders (base: URL, merchantToken: string, orders: readonly OrderToRegister[], options: { concurrency: number, timeoutMs: number }): Promise<string[]> {
  const refused: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < orders.length) {
      const order = orders[next++]!
      let answer: string
      try {
        const response = await fetch(new URL('/orders', base), {
          method: 'POST',
          headers: { authorization: `Bearer ${merchantToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ order_id: order.orderId, amount: formatMinorUnits(order.amount, order.currency), currency: order.currency }),
          signal: AbortSignal.timeout(options.timeoutMs)
        })
        if (response.status === 200 || response.status === 201) continue
        answer = `${response.status} ${(await response.text()).replace(/\s+/g, ' ').slice(0, 200)}${response.status === 401 ? ' (check --merchant-token)' : ''}`
      } catch (error) {
        answer = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
      }
      refused.push(`${order.orderId}: POST /orders answered ${answer}`)
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency, orders.length) }, worker))
  return refused.sort()
}
