/**
 * Ports of the penalties context (DESIGN §5 Penalties, §8.3): habits and their
 * verifications, the daily assessment that turns a missed day into a penalty, the
 * user's penalties with their summary, recipients' totals, settlement and the payment
 * gateway that settlement charges through. Adapters implement them.
 */
import { InvalidCursorError, type Page } from '../shared/paging.ts';
import type { Tier } from '../shared/tiers.ts';

export const PENALTY_STATUSES = ['unpaid', 'pending', 'paid', 'waived'] as const;
export type PenaltyStatus = (typeof PENALTY_STATUSES)[number];

/** Money in integer minor units with a lower-case ISO currency, as Stripe sends it. */
export interface Money {
  currency: string;
  amount: number;
}

/** What a user sets on a habit (`PUT /users/{userId}/habits/{habitId}`). */
export interface HabitSettings {
  name: string;
  penaltyAmount: number;
  currency: string;
  free: boolean;
  recipientId: string | null;
  active: boolean;
}

/** A habit as `GET /users/{userId}/habits` answers it. */
export interface Habit extends HabitSettings {
  userId: string;
  habitId: string;
  currentStreak: number;
  longestStreak: number;
  /** The last date (UTC `YYYY-MM-DD`) assessed for it, or null. */
  lastAssessedDate: string | null;
  /**
   * Settings that still apply to days not yet assessed, oldest first: a change takes
   * effect the next UTC day, so a day already missed cannot be dodged by switching the
   * habit off, making it free or lowering its penalty before that day's assessment.
   * Empty when no change waits on an assessment. Not part of the API's answer.
   */
  earlierSettings: EarlierSettings[];
  /** ISO 8601 UTC. */
  createdAt: string;
  updatedAt: string;
}

/** The settings a habit had up to and including the UTC day `through`, when it changed that day. */
export interface EarlierSettings {
  through: string;
  penaltyAmount: number;
  currency: string;
  free: boolean;
  recipientId: string | null;
  active: boolean;
}

/** A habit as the assessment reads it: its settings, streaks and the verified dates not yet assessed. */
export interface AssessableHabit {
  userId: string;
  habitId: string;
  penaltyAmount: number;
  currency: string;
  free: boolean;
  recipientId: string | null;
  currentStreak: number;
  longestStreak: number;
  /** The last date this habit was assessed for (an inactive day leaves it), or null. */
  lastAssessedDate: string | null;
  active: boolean;
  /** See `Habit.earlierSettings`: a day up to an entry's `through` is assessed with it. */
  earlierSettings: EarlierSettings[];
  /** ISO 8601 UTC: a habit is not assessed for days before the one it was created on. */
  createdAt: string;
  /** Verified dates not yet assessed (the assessment consumes them). */
  verifiedDates: string[];
}

/**
 * A user's habits as the assessment reads them: all on the user's account item, so one
 * conditional write assesses every habit of the user for a date.
 */
export interface AssessableAccount {
  userId: string;
  /** The last date the user's habits were assessed for (all in the same write), or null. */
  assessedThrough: string | null;
  /** Verifications recorded so far: a write is refused if one lands between read and commit. */
  verifications: number;
  /** Habit writes so far: the account leaves the assessment only if no habit changed since read. */
  habitsVersion: number;
  habits: AssessableHabit[];
}

export interface Penalty {
  penaltyId: string;
  userId: string;
  habitId: string;
  /** The missed day, `YYYY-MM-DD`. */
  date: string;
  amount: number;
  currency: string;
  recipientId: string | null;
  status: PenaltyStatus;
  /** The PaymentIntent that pays (or paid) it, while `pending` or once `paid` through Stripe. */
  paymentId: string | null;
  /** ISO 8601 UTC. */
  createdAt: string;
  /** ISO 8601 UTC of the last status change. */
  updatedAt: string;
}

/**
 * A penalty a PaymentIntent paid when it was already settled otherwise (waived by a
 * credit, or paid by another payment): money the user is owed back. Recorded by the
 * payment consumer, refunded by the operators' `refunds` command (never twice: the
 * refund's idempotency key is made from the PaymentIntent and the penalty).
 */
export interface Overpayment {
  paymentIntentId: string;
  penaltyId: string;
  userId: string;
  amount: number;
  currency: string;
  /** Why it is owed: `waived` or `paid` (by the other payment named in `settledBy`). */
  settledAs: 'waived' | 'paid';
  settledBy: string | null;
  /** ISO 8601 UTC. */
  recordedAt: string;
  /** Set once refunded. */
  refundId: string | null;
  refundedAt: string | null;
}

/** `GET /users/{userId}/penalties/summary`. */
export interface PenaltySummary {
  userId: string;
  unpaidCount: number;
  /** Per currency, ascending by currency. */
  unpaidAmount: Money[];
  oldestUnpaidDate: string | null;
}

/** `GET /recipients/{recipientId}/totals`. */
export interface RecipientTotals {
  recipientId: string;
  penaltiesPaid: number;
  amounts: Money[];
}

/** The settlement waiting for its PaymentIntent's outcome; one per user at a time. */
export interface PendingSettlement {
  paymentIntentId: string;
  penaltyIds: string[];
  /** ISO 8601 UTC. */
  startedAt: string;
}

// ---- Storage ------------------------------------------------------------------------

/** The user's penalties account: habit counts for the limits, the unpaid summary, the settlement lock. */
export interface PenaltyAccount {
  userId: string;
  habits: number;
  /** Active free habits (the tier's limit applies to these). */
  freeHabits: number;
  unpaidCount: number;
  /** Per currency, ascending by currency; currencies at 0 left out. */
  unpaidAmount: Money[];
  /** The date of the oldest unpaid penalty (null when none), kept on the same item. */
  oldestUnpaidDate: string | null;
  pending: PendingSettlement | null;
}

/** What settlement needs of the user's billing profile (another context's item, read-only but for credits). */
export interface UserBilling {
  /** `free` when the user has no profile. */
  tier: Tier;
  credits: number;
  customerId: string | null;
  /** Whether the user has a billing profile (a known user, with or without habits). */
  hasProfile: boolean;
}

export type HabitWriteResult = 'written' | 'free-habit-limit' | 'habit-limit' | 'conflict';

export interface HabitWrite {
  habit: Habit;
  /** The habit as read before (null: create); the write is refused if it changed since. */
  previous: Habit | null;
  freeHabitLimit: number;
  maxHabits: number;
}

export type VerificationResult = 'recorded' | 'already-assessed' | 'no-habit';

export interface HabitKey {
  userId: string;
  habitId: string;
}

/** One habit's outcome for a date. */
export interface HabitAssessment extends HabitKey {
  outcome: 'verified' | 'missed';
  currentStreak: number;
  longestStreak: number;
  penalty: Penalty | null;
}

/** A habit done on a date (a verification). */
export interface HabitDay {
  habitId: string;
  /** `YYYY-MM-DD`. */
  date: string;
}

/**
 * One user's assessment for a date, as the store writes it: the account item (streaks,
 * the assessed date, the unpaid summary) conditioned on what was read, and the new
 * penalties, put only if absent.
 */
export interface AccountAssessment {
  userId: string;
  expectedAssessedThrough: string | null;
  expectedVerifications: number;
  /** The habits assessed (the user's inactive or younger habits are left out). */
  habits: HabitAssessment[];
  /** Verifications up to the assessed date, of any of the user's habits: removed from the account. */
  consumed: HabitDay[];
  /** The unpaid summary's change from the new penalties, or null when there are none. */
  summary: AccountDelta | null;
  /**
   * Set when no habit of the user is assessed after this date (all switched off, nothing
   * owed): the account leaves the assessment index, on condition no habit changed since read.
   */
  leavesAssessment: { habitsVersion: number } | null;
}

export interface AssessmentCounts {
  habits: number;
  verified: number;
  missed: number;
  penaltiesCreated: number;
}

/** One shard of a date's assessment: where it is, what it has done. */
export interface ShardProgress extends AssessmentCounts {
  shard: number;
  /** The store's position after the last committed page, or null before the first. */
  cursor: string | null;
  done: boolean;
}

/** A slice of one shard's page: accounts, penalties and the shard's progress, atomically. */
export interface AssessmentCommit {
  date: string;
  shard: number;
  /** The position to resume after once this commits. */
  cursor: string | null;
  /** True when this slice ends the shard. */
  done: boolean;
  /** True for the shard's first slice (nothing of it committed before): it marks the date started. */
  startsShard: boolean;
  assessments: AccountAssessment[];
  counts: AssessmentCounts;
  at: number;
}

export type AssessmentCommitResult =
  | { status: 'committed' }
  /** These accounts changed since read (assessed, verified or a habit written concurrently): re-read and re-plan. */
  | { status: 'conflict'; users: string[] }
  /** Another writer held an item (TransactionConflict) or DynamoDB throttled: retry the same slice. */
  | { status: 'busy' };

/** A change to one user's unpaid summary. */
export interface AccountDelta {
  userId: string;
  unpaidCount: number;
  /** Per currency (may be negative). */
  unpaidAmount: Money[];
  /**
   * Per penalty date, the change in unpaid penalties of that date (may be negative): the
   * account keeps a count per date, so its oldest unpaid date is read from the item.
   */
  unpaidDates: DateCount[];
}

export interface DateCount {
  /** `YYYY-MM-DD`. */
  date: string;
  count: number;
}

/** A paid penalty adding to its recipient's totals. */
export interface RecipientDelta {
  recipientId: string;
  penaltiesPaid: number;
  amounts: Money[];
}

/** A penalty moving from the status (and PaymentIntent) it was read in to another: refused if either changed since. */
export interface PenaltyTransition {
  penalty: Penalty;
  to: PenaltyStatus;
  paymentId: string | null;
}

/** Penalty status changes and everything they move, in one transaction. */
export interface TransitionCommit {
  transitions: PenaltyTransition[];
  accounts: AccountDelta[];
  recipients: RecipientDelta[];
  /** Settlement: credits spent from the user's profile (never below zero). */
  creditsUsed?: { userId: string; count: number };
  /** Settlement: the lock to take (refused when the user already has one). */
  lockPending?: { userId: string; settlement: PendingSettlement };
  /** A payment's outcome: the lock to release, only if it is this PaymentIntent's. */
  releasePending?: { userId: string; paymentIntentId: string };
  at: number;
}

export type TransitionCommitResult =
  | { status: 'committed' }
  /** A penalty's status, the lock or the credits changed since read: re-read and re-plan. */
  | { status: 'conflict'; reason: 'penalty-changed' | 'settlement-pending' | 'credits-changed' }
  | { status: 'busy' };

/** `fields` of the penalties list: the attributes a caller may select. */
export const PENALTY_FIELDS = [
  'penaltyId',
  'userId',
  'habitId',
  'date',
  'amount',
  'currency',
  'recipientId',
  'status',
  'paymentId',
  'createdAt',
  'updatedAt',
] as const;
export type PenaltyField = (typeof PENALTY_FIELDS)[number];

export interface PenaltiesQuery {
  userId: string;
  status?: PenaltyStatus;
  limit: number;
  cursor?: string;
  /** Attributes to return (all when absent). */
  fields?: readonly PenaltyField[];
}

export interface PenaltyStore {
  getAccount(userId: string): Promise<PenaltyAccount | null>;
  getUserBilling(userId: string): Promise<UserBilling>;

  listHabits(userId: string): Promise<Habit[]>;
  getHabit(key: HabitKey): Promise<Habit | null>;
  putHabit(write: HabitWrite): Promise<HabitWriteResult>;
  /** Adds the date to the habit's verified dates unless that date is already assessed for it. */
  addVerification(key: HabitKey, date: string): Promise<VerificationResult>;

  /**
   * One page of a shard's accounts with a habit still assessed, in a stable order;
   * `cursor` from the previous page or the shard's progress.
   */
  accountsToAssess(query: {
    shard: number;
    limit: number;
    cursor: string | null;
  }): Promise<Page<AssessableAccount> & { positions: string[] }>;
  /** Strongly consistent reads of accounts to re-plan after a conflict (unknown users left out). */
  reloadAccounts(userIds: readonly string[]): Promise<AssessableAccount[]>;
  commitAssessment(commit: AssessmentCommit): Promise<AssessmentCommitResult>;
  /** Every shard's progress for `date` (shards never started are absent). */
  readAssessment(date: string): Promise<ShardProgress[]>;
  /** The earliest date after `date` whose assessment has committed anything, or null. */
  assessmentStartedAfter(date: string): Promise<string | null>;

  listPenalties(query: PenaltiesQuery): Promise<Page<Partial<Penalty>>>;
  /** Strongly consistent reads by id; unknown ids are absent. */
  getPenalties(penaltyIds: readonly string[]): Promise<Map<string, Penalty>>;
  /** The user's oldest unpaid penalties, oldest first (from the status index). */
  oldestUnpaid(userId: string, limit: number): Promise<Penalty[]>;
  commitTransitions(commit: TransitionCommit): Promise<TransitionCommitResult>;
  /**
   * Users whose settlement lock was taken before `startedBefore` (ISO 8601 UTC), oldest
   * lock first, at most `limit`. From an eventually consistent index: a lock just
   * released may still be listed, so re-read the account before acting on it.
   */
  abandonedSettlements(startedBefore: string, limit: number): Promise<string[]>;

  recipientTotals(recipientId: string): Promise<RecipientTotals | null>;

  /**
   * Records overpayments; recording one again changes nothing (keyed by PaymentIntent
   * and penalty). Answers those recorded for the first time.
   */
  recordOverpayments(overpayments: readonly Overpayment[]): Promise<Overpayment[]>;
  /** Overpayments not refunded yet (all of them with `all`), oldest first. */
  listOverpayments(options?: { all?: boolean }): Promise<Overpayment[]>;
  markOverpaymentRefunded(
    key: { paymentIntentId: string; penaltyId: string },
    refund: { refundId: string; refundedAt: string },
  ): Promise<void>;
}

// ---- The payment gateway (Stripe) ------------------------------------------------

/** A PaymentIntent to create for a settlement. */
export interface PenaltyPaymentRequest {
  userId: string;
  /** The user's Stripe customer, when known (the PaymentIntent is attached to it). */
  customerId: string | null;
  amount: number;
  currency: string;
  /** The penalties it pays, oldest first; carried in metadata (core/shared/penalty-metadata.ts). */
  penaltyIds: string[];
  /** Made from the penalty ids, so settling the same penalties twice creates one PaymentIntent. */
  idempotencyKey: string;
}

export interface CreatedPaymentIntent {
  paymentIntentId: string;
  clientSecret: string;
  amount: number;
  currency: string;
}

export interface PenaltyPaymentGateway {
  /**
   * Creates (or, for a repeated idempotency key, returns) the PaymentIntent. Throws
   * PaymentGatewayUnavailableError when Stripe cannot be reached, keeps failing or
   * rate-limits past the retries, or the breaker is open; PaymentRejectedError when
   * Stripe refuses the request itself (retrying would not help).
   */
  createPenaltyPayment(request: PenaltyPaymentRequest): Promise<CreatedPaymentIntent>;
  /**
   * Cancels an abandoned settlement's PaymentIntent. Answers what it now is: `canceled`
   * (by this call or before), `succeeded` (it was paid after all; its webhook may be
   * late), or `open` (processing: it cannot be canceled now). Same errors as creating.
   */
  cancelPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentState>;
  /**
   * Reads a settlement's PaymentIntent: what it is now and what the payment sheet needs
   * to take it up again (the answer to a settle whose response was lost). Same errors
   * as creating.
   */
  getPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentStatus>;
  /**
   * Refunds part of a PaymentIntent, once per idempotency key; answers the refund's id.
   * Same errors as creating.
   */
  refundPenaltyPayment(request: PenaltyRefundRequest): Promise<string>;
}

/** A partial refund of a settlement PaymentIntent (an overpaid penalty). */
export interface PenaltyRefundRequest {
  paymentIntentId: string;
  amount: number;
  penaltyIds: string[];
  idempotencyKey: string;
}

export type PenaltyPaymentState = 'canceled' | 'succeeded' | 'open';

export interface PenaltyPaymentStatus extends CreatedPaymentIntent {
  state: PenaltyPaymentState;
}

/** Stripe is down, slow or rate-limiting: answer 503 with Retry-After; nothing was changed. */
export class PaymentGatewayUnavailableError extends Error {
  readonly retryAfterSeconds: number;

  constructor(message: string, options?: ErrorOptions & { retryAfterSeconds?: number }) {
    super(message, options);
    this.name = 'PaymentGatewayUnavailableError';
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 5;
  }
}

/** Stripe refused the request (a 4xx other than 429): retrying the same request would not help. */
export class PaymentRejectedError extends Error {
  /** Stripe's error code (e.g. `amount_too_small`), never its message. */
  readonly code: string;

  constructor(code: string, options?: ErrorOptions) {
    super(`Stripe refused the payment (${code}).`, options);
    this.name = 'PaymentRejectedError';
    this.code = code;
  }
}

export { InvalidCursorError, type Page, type Tier };
