/**
 * HTTP route paths shared by the CDK constructs that create the routes, the handlers
 * that answer them and the local runtime, so a path is spelled once.
 */
export const WEBHOOK_PATH = '/webhooks/stripe';
export const SUBSCRIPTION_READ_PATH = '/users/{userId}/subscription';

/** The payments read API (DESIGN §8.1), all served by one function. */
export const PAYMENT_ROUTES = {
  payment: '/payments/{id}',
  userPayments: '/users/{userId}/payments',
  refundsReport: '/reports/refunds',
  paymentsReport: '/reports/payments',
  dailySummary: '/reports/daily-summary',
} as const;

/** The credits routes (DESIGN §8.2). */
export const CREDIT_ROUTES = {
  userCredits: '/users/{userId}/credits',
  stats: '/admin/credits/stats',
  refresh: '/admin/credits/refresh',
} as const;
