import type { NewEvent } from '../../src/event-log/event-log.js'

export function paid (orderId: string, deliveryId: string, amount = 10000): NewEvent {
  return {
    streamId: orderId,
    type: 'PaymentSucceeded',
    data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-01-01T00:00:00.000Z', requestId: `r-${deliveryId}` }
  }
}

export function placed (orderId: string, amount = 10000): NewEvent {
  return {
    streamId: orderId,
    type: 'OrderPlaced',
    data: { orderId, amount, currency: 'CNY' },
    metadata: { gateway: 'merchant', deliveryId: `order:${orderId}`, receivedAt: '2026-01-01T00:00:00.000Z', requestId: `r-${orderId}` }
  }
}
