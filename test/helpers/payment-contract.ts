/**
 * DESIGN §8.1's payment fields, spelled out independently of the code (the tests check
 * the routes against the contract, not against the codec's own field order).
 */
export const PAYMENT_FIELDS = [
  'paymentId',
  'chargeId',
  'userId',
  'customerId',
  'amount',
  'amountRefunded',
  'currency',
  'status',
  'purpose',
  'penaltyIds',
  'createdAt',
  'paidAt',
  'refundedAt',
  'failureCode',
  'dispute',
] as const;
