/**
 * CloudWatch metric names and namespace, shared by the handlers (which emit them
 * as EMF) and the Observability construct (which graphs and alarms on them). The
 * consumer outcome metrics (Events*, lags) are emitted by every event family's
 * consumer; the `service` dimension tells the families apart.
 */
export const METRICS_NAMESPACE = 'BillingSuite';

/**
 * Dimension names: `service` is the one Powertools gives every metric (the function's
 * POWERTOOLS_SERVICE_NAME); the webhook adds `reason` to rejections and `eventType` to
 * unrouted events.
 */
export const METRIC_DIMENSION = {
  service: 'service',
  reason: 'reason',
  eventType: 'eventType',
} as const;

export const METRIC = {
  /** Webhook requests that reached the handler. */
  webhookReceived: 'WebhookReceived',
  /** Webhook requests answered 4xx (bad signature, too large, malformed...). Dimension `reason`. */
  webhookRejected: 'WebhookRejected',
  /** Verified events safely in SQS (answered 2xx). */
  webhookEnqueued: 'WebhookEnqueued',
  /** Verified events of a type no family consumes: acknowledged, not queued. Dimension `eventType`. */
  webhookUnrouted: 'WebhookUnrouted',
  /** Verified events of the other Stripe mode (live vs test): acknowledged, not queued. */
  webhookWrongMode: 'WebhookWrongMode',
  /** Verified events that could not be enqueued (answered 5xx so Stripe retries). */
  webhookEnqueueFailed: 'WebhookEnqueueFailed',
  /** Events whose state change was committed (per consumer: `service` dimension). */
  eventsProcessed: 'EventsProcessed',
  /** Events already in the ledger: acknowledged, nothing changed. */
  eventsDuplicate: 'EventsDuplicate',
  /** Events older than the stored state of their object: recorded, state untouched. */
  eventsOutOfOrder: 'EventsOutOfOrder',
  /** Event types the consumer does not handle: acknowledged and counted. */
  eventsIgnored: 'EventsIgnored',
  /** Records reported as batch item failures (retried, then DLQ). */
  eventsFailed: 'EventsFailed',
  /** Subscription prices with no tier (no metadata.tier, not in PRICE_TIER_MAP): granted free. */
  unmappedPrices: 'UnmappedPrices',
  /** Customers marked for a resync: same-second updates their payloads could not order. */
  subscriptionTiesUnresolved: 'SubscriptionTiesUnresolved',
  /** Read API requests answered with a subscription. */
  subscriptionReads: 'SubscriptionReads',
  /** Read API requests for a user the store does not know. */
  subscriptionReadMisses: 'SubscriptionReadMisses',
  /** Read API misses answered from Stripe (read-through fallback) and stored as a snapshot. */
  subscriptionFallbackHits: 'SubscriptionFallbackHits',
  /** Stripe API calls (one per logical call, retries included). */
  stripeCalls: 'StripeCalls',
  /** Milliseconds one Stripe call took, retries included. */
  stripeCallLatency: 'StripeCallLatency',
  /** Stripe calls refused at once because the circuit breaker was open. */
  stripeCircuitRejected: 'StripeCircuitRejected',
  /** 1 each time the Stripe circuit breaker opens (alarmed). */
  stripeCircuitOpened: 'StripeCircuitOpened',
  /**
   * The Stripe circuit breaker's new state, on every transition (see
   * STRIPE_CIRCUIT_STATE_VALUE); graph its Maximum: a period's worst state.
   */
  stripeCircuitState: 'StripeCircuitState',
  /** Payment lookups and reports answered 200. */
  paymentReads: 'PaymentReads',
  /** Users the credit planner enqueued for a refresh. */
  creditsPlanned: 'CreditsPlanned',
  /** Users whose credits were refreshed (one conditional write each). */
  creditsRefreshed: 'CreditsRefreshed',
  /** Refresh work that changed nothing: already refreshed for the day, or no profile. */
  creditsSkipped: 'CreditsSkipped',
  /** Refresh work that failed (retried by the queue, then DLQ). */
  creditsFailed: 'CreditsFailed',
  /** Minutes between a planned slot's start and its planning (0 when on time). */
  creditSlotLag: 'CreditSlotLag',
  /** Penalties the assessment created (one per missed non-free habit-day). */
  penaltiesCreated: 'PenaltiesCreated',
  /** Penalties that became paid (settlement payment succeeded, or marked paid by an operator). */
  penaltiesPaid: 'PenaltiesPaid',
  /** Penalties a PaymentIntent paid when they were already waived or paid: a refund is due. */
  penaltiesOverpaid: 'PenaltiesOverpaid',
  /** Milliseconds one assessment run took. */
  penaltyAssessmentDuration: 'PenaltyAssessmentDuration',
  /** Habits an assessment run assessed (verified or missed). */
  penaltyHabitsAssessed: 'PenaltyHabitsAssessed',
  /** 1 when yesterday's assessment is still incomplete past the deadline hour, else 0; emitted hourly. */
  penaltyAssessmentOverdue: 'PenaltyAssessmentOverdue',
  /** Settlements committed (waived and/or a PaymentIntent created). */
  penaltySettlements: 'PenaltySettlements',
  /** Settlements that failed because Stripe was unavailable or refused (answered 503/409). */
  penaltySettlementFailures: 'PenaltySettlementFailures',
  /**
   * Abandoned settlements the hourly sweep released: canceled at Stripe and their
   * penalties back to unpaid, or paid when Stripe says the PaymentIntent succeeded.
   */
  penaltySettlementsReleased: 'PenaltySettlementsReleased',
  /** Abandoned settlements the sweep could not release (Stripe unavailable or refusing, a store error); retried hourly. */
  penaltySettlementReleaseFailures: 'PenaltySettlementReleaseFailures',
  /** Milliseconds from SQS enqueue to commit. */
  processingLag: 'ProcessingLag',
  /** Milliseconds from Stripe's `created` to commit (includes Stripe's own delivery delay). */
  endToEndLag: 'EndToEndLag',
} as const;

/** Values of METRIC.stripeCircuitState: the worse the state, the higher the value. */
export const STRIPE_CIRCUIT_STATE_VALUE = {
  closed: 0,
  'half-open': 1,
  open: 2,
} as const satisfies Record<'closed' | 'half-open' | 'open', number>;
