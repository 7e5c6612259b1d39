/** Builders shared by the penalties unit tests: an in-memory store, habits, a fake gateway. */
import type { InMemoryPenaltyStore } from '../../../functions/adapters/memory/in-memory-penalty-store.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../../functions/core/penalties/habits.ts';
import {
  type CreatedPaymentIntent,
  type HabitSettings,
  PaymentRejectedError,
  type PenaltyPaymentGateway,
  type PenaltyPaymentRequest,
  type PenaltyPaymentState,
  type PenaltyPaymentStatus,
  type PenaltyRefundRequest,
} from '../../../functions/core/penalties/ports.ts';

export const DAY = 86_400_000;
export const at = (date: string, time = '12:00:00') => Date.parse(`${date}T${time}.000Z`);

export function settings(overrides: Partial<HabitSettings> = {}): HabitSettings {
  return {
    name: 'Run',
    penaltyAmount: 500,
    currency: 'usd',
    free: false,
    recipientId: 'charity-1',
    active: true,
    ...overrides,
  };
}

/** Puts a habit created at `createdOn` (noon UTC) straight into the store. */
export async function addHabit(
  store: InMemoryPenaltyStore,
  userId: string,
  habitId: string,
  createdOn: string,
  overrides: Partial<HabitSettings> = {},
): Promise<void> {
  const habit = withSettings(
    { userId, habitId },
    settings(overrides),
    null,
    new Date(at(createdOn)).toISOString(),
  );
  const result = await store.putHabit({
    habit,
    previous: null,
    freeHabitLimit: DEFAULT_FREE_HABIT_LIMITS.gold,
    maxHabits: MAX_HABITS_PER_USER,
  });
  if (result !== 'written') throw new Error(`could not add habit: ${result}`);
}

/** A gateway that answers like Stripe: one PaymentIntent per idempotency key. */
export class FakeGateway implements PenaltyPaymentGateway {
  readonly requests: PenaltyPaymentRequest[] = [];
  readonly intents = new Map<string, CreatedPaymentIntent>();
  readonly cancels: string[] = [];
  failWith: Error | null = null;
  /** What a cancel finds the PaymentIntent to be. */
  cancelAnswer: PenaltyPaymentState = 'canceled';

  async cancelPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentState> {
    this.cancels.push(paymentIntentId);
    if (this.failWith) throw this.failWith;
    if (this.cancelAnswer === 'canceled') {
      // Like the Stripe adapter: the same key after a cancel gives a new PaymentIntent.
      for (const [key, intent] of this.intents) {
        if (intent.paymentIntentId === paymentIntentId) this.intents.delete(key);
      }
    }
    return this.cancelAnswer;
  }

  /** What a read finds the PaymentIntent to be (it must have been created here). */
  stateAnswer: PenaltyPaymentState = 'open';

  async getPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentStatus> {
    if (this.failWith) throw this.failWith;
    const intent = [...this.intents.values()].find((i) => i.paymentIntentId === paymentIntentId);
    if (!intent) throw new PaymentRejectedError('resource_missing');
    return { ...intent, state: this.stateAnswer };
  }

  /** Refunds by idempotency key: the same key refunds once, as at Stripe. */
  readonly refunds = new Map<
    string,
    { refundId: string; paymentIntentId: string; amount: number; penaltyIds: string[] }
  >();

  async refundPenaltyPayment(request: PenaltyRefundRequest): Promise<string> {
    if (this.failWith) throw this.failWith;
    const existing = this.refunds.get(request.idempotencyKey);
    if (existing) return existing.refundId;
    const refundId = `re_fake${this.refunds.size + 1}`;
    this.refunds.set(request.idempotencyKey, {
      refundId,
      paymentIntentId: request.paymentIntentId,
      amount: request.amount,
      penaltyIds: request.penaltyIds,
    });
    return refundId;
  }

  async createPenaltyPayment(request: PenaltyPaymentRequest): Promise<CreatedPaymentIntent> {
    this.requests.push(request);
    if (this.failWith) throw this.failWith;
    const existing = this.intents.get(request.idempotencyKey);
    if (existing) return existing;
    const id = `pi_fake${this.requests.length}`;
    const intent = {
      paymentIntentId: id,
      clientSecret: `${id}_secret_x`,
      amount: request.amount,
      currency: request.currency,
    };
    this.intents.set(request.idempotencyKey, intent);
    return intent;
  }
}

export const noPause = async () => {};

export function fixedClock(now: number) {
  const clock = { now: () => clock.time, time: now };
  return clock;
}
