/**
 * HTTP route paths shared by the CDK constructs that create the routes, the handlers
 * that answer them and the local runtime, so a path is spelled once.
 */
export const WEBHOOK_PATH = '/webhooks/stripe';

/** The route template of an HTTP API v2 event (`PUT /users/{userId}/habits/{habitId}` → the path part). */
export function routePathOf(event: { routeKey?: string }): string | undefined {
  return /^[A-Z]+ (\/.*)$/.exec(event.routeKey ?? '')?.[1];
}

/** Routes for operators; every other IAM route is the app backend's. */
export const OPERATOR_ROUTE_PREFIXES = ['/admin/', '/reports/'] as const;

/** Whether a route path is the operators' (else the app backend's). */
export function isOperatorRoute(path: string): boolean {
  return OPERATOR_ROUTE_PREFIXES.some((prefix) => path.startsWith(prefix));
}
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

/** The penalties routes (DESIGN §8.3): user routes on one function, admin routes on another. */
export const PENALTY_ROUTES = {
  habits: '/users/{userId}/habits',
  habit: '/users/{userId}/habits/{habitId}',
  verification: '/users/{userId}/habits/{habitId}/verifications/{date}',
  penalties: '/users/{userId}/penalties',
  summary: '/users/{userId}/penalties/summary',
  settle: '/users/{userId}/penalties/settle',
  recipientTotals: '/recipients/{recipientId}/totals',
  assess: '/admin/penalties/assess',
  markPaid: '/admin/penalties/mark-paid',
} as const;
