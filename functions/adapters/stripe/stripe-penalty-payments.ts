/**
 * The penalty payment gateway on Stripe: one PaymentIntent per settlement, carrying
 * `metadata.purpose=penalty`, the user and the penalty ids (the payment consumer marks
 * them paid from those when `payment_intent.succeeded` arrives), created with the
 * settlement's idempotency key so a retried settlement returns the same PaymentIntent.
 */
import type Stripe from 'stripe';
import {
  type CreatedPaymentIntent,
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
  type PenaltyPaymentGateway,
  type PenaltyPaymentRequest,
  type PenaltyPaymentState,
  type PenaltyPaymentStatus,
  type PenaltyRefundRequest,
} from '../../core/penalties/ports.ts';
import { PENALTY_PURPOSE, penaltyIdsMetadata } from '../../core/shared/penalty-metadata.ts';
import { StripeCaller } from './stripe-call.ts';
import type { StripeClientSource } from './stripe-client.ts';
import type { StripeCallPolicy } from './stripe-resilience.ts';

export class StripePenaltyPaymentGateway implements PenaltyPaymentGateway {
  readonly #stripe: StripeCaller;

  constructor(deps: { clients: StripeClientSource; calls: StripeCallPolicy }) {
    this.#stripe = new StripeCaller(deps.clients, deps.calls, {
      unavailable: (message, options) => new PaymentGatewayUnavailableError(message, options),
      // e.g. amount_too_small, an idempotency key reused with other parameters.
      rejected: (code, error) => new PaymentRejectedError(code, { cause: error }),
    });
  }

  async createPenaltyPayment(request: PenaltyPaymentRequest): Promise<CreatedPaymentIntent> {
    const params: Stripe.PaymentIntentCreateParams = {
      amount: request.amount,
      currency: request.currency,
      ...(request.customerId ? { customer: request.customerId } : {}),
      automatic_payment_methods: { enabled: true },
      description: `Habit penalties (${request.penaltyIds.length})`,
      metadata: {
        purpose: PENALTY_PURPOSE,
        userId: request.userId,
        ...penaltyIdsMetadata(request.penaltyIds),
      },
    };
    return createdIntent(await this.#createFresh(params, request.idempotencyKey));
  }

  async cancelPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentState> {
    try {
      await this.#stripe.call((stripe, timeout) =>
        stripe.paymentIntents.cancel(paymentIntentId, {}, { timeout }),
      );
      return 'canceled';
    } catch (error) {
      // Already canceled, or paid meanwhile: Stripe refuses the cancel; ask what it is.
      if (
        !(error instanceof PaymentRejectedError && error.code === 'payment_intent_unexpected_state')
      ) {
        throw error;
      }
    }
    const intent = await this.#stripe.call((stripe, timeout) =>
      stripe.paymentIntents.retrieve(paymentIntentId, {}, { timeout }),
    );
    if (intent.status === 'succeeded') return 'succeeded';
    return intent.status === 'canceled' ? 'canceled' : 'open';
  }

  async getPenaltyPayment(paymentIntentId: string): Promise<PenaltyPaymentStatus> {
    const intent = await this.#stripe.call((stripe, timeout) =>
      stripe.paymentIntents.retrieve(paymentIntentId, {}, { timeout }),
    );
    return {
      ...createdIntent(intent),
      state:
        intent.status === 'succeeded'
          ? 'succeeded'
          : intent.status === 'canceled'
            ? 'canceled'
            : 'open',
    };
  }

  async refundPenaltyPayment(request: PenaltyRefundRequest): Promise<string> {
    const refund = await this.#stripe.call((stripe, timeout) =>
      stripe.refunds.create(
        {
          payment_intent: request.paymentIntentId,
          amount: request.amount,
          reason: 'duplicate',
          metadata: { purpose: PENALTY_PURPOSE, ...penaltyIdsMetadata(request.penaltyIds) },
        },
        { idempotencyKey: request.idempotencyKey, timeout },
      ),
    );
    return refund.id;
  }

  /**
   * Creates the PaymentIntent. Settling the same penalties again after their intent was
   * canceled or failed derives the same key, and Stripe replays the first answer for
   * 24 h: that intent, as it was at creation. So a replay is checked, and a canceled one,
   * or one whose payment failed, is replaced under a key derived from it (deterministic:
   * a double click still dedups). A failed one is canceled first: reused, a late or
   * redelivered `payment_failed` of its first attempt would put the penalties of this new
   * settlement back to unpaid while its client secret can still pay; replaced, that
   * event only concerns penalties pending under the old intent, and there are none.
   */
  async #createFresh(
    params: Stripe.PaymentIntentCreateParams,
    idempotencyKey: string,
  ): Promise<Stripe.PaymentIntent> {
    let key = idempotencyKey;
    for (let replaced = 0; ; replaced += 1) {
      const intent = await this.#stripe.call((stripe, timeout) =>
        stripe.paymentIntents.create(params, { idempotencyKey: key, timeout }),
      );
      if (intent.lastResponse?.headers?.['idempotent-replayed'] !== 'true') return intent;
      const current = await this.#stripe.call((stripe, timeout) =>
        stripe.paymentIntents.retrieve(intent.id, {}, { timeout }),
      );
      const failedBefore =
        current.status === 'requires_payment_method' && current.last_payment_error != null;
      if (failedBefore) {
        // Confirmed again meanwhile (Stripe refuses the cancel): that attempt stands.
        if ((await this.cancelPenaltyPayment(intent.id)) !== 'canceled') return intent;
      } else if (current.status !== 'canceled') {
        return intent;
      }
      if (replaced >= 5) {
        throw new PaymentRejectedError('payment_intent_canceled_repeatedly');
      }
      key = `${idempotencyKey}:after:${intent.id}`;
    }
  }
}

/** What the payment sheet needs of a PaymentIntent (its client secret is always set with a secret key). */
function createdIntent(intent: Stripe.PaymentIntent): CreatedPaymentIntent {
  if (!intent.client_secret) {
    throw new PaymentGatewayUnavailableError(
      'Stripe returned a PaymentIntent without a client secret.',
    );
  }
  return {
    paymentIntentId: intent.id,
    clientSecret: intent.client_secret,
    amount: intent.amount,
    currency: intent.currency,
  };
}
