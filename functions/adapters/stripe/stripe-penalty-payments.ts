/**
 * The penalty payment gateway on Stripe: one PaymentIntent per settlement, carrying
 * `metadata.purpose=penalty`, the user and the penalty ids (the payment consumer marks
 * them paid from those when `payment_intent.succeeded` arrives), created with the
 * settlement's idempotency key so a retried settlement returns the same PaymentIntent.
 */
import Stripe from 'stripe';
import {
  type CreatedPaymentIntent,
  PaymentGatewayUnavailableError,
  PaymentRejectedError,
  type PenaltyPaymentGateway,
  type PenaltyPaymentRequest,
} from '../../core/penalties/ports.ts';
import { PENALTY_PURPOSE, penaltyIdsMetadata } from '../../core/shared/penalty-metadata.ts';
import type { StripeClientSource } from './stripe-client.ts';
import { type StripeCallPolicy, StripeUnavailableError } from './stripe-resilience.ts';

export class StripePenaltyPaymentGateway implements PenaltyPaymentGateway {
  readonly #clients: StripeClientSource;
  readonly #calls: StripeCallPolicy;

  constructor(deps: { clients: StripeClientSource; calls: StripeCallPolicy }) {
    this.#clients = deps.clients;
    this.#calls = deps.calls;
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
    const intent = await this.#create(params, request.idempotencyKey, true);
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

  async #create(
    params: Stripe.PaymentIntentCreateParams,
    idempotencyKey: string,
    mayRefreshKey: boolean,
  ): Promise<Stripe.PaymentIntent> {
    try {
      const stripe = await this.#clients.get();
      return await this.#calls.run(({ timeoutMs }) =>
        stripe.paymentIntents.create(params, { idempotencyKey, timeout: timeoutMs }),
      );
    } catch (error) {
      if (error instanceof StripeUnavailableError) {
        throw new PaymentGatewayUnavailableError(error.message, {
          cause: error,
          retryAfterSeconds: error.retryAfterSeconds,
        });
      }
      if (error instanceof Stripe.errors.StripeAuthenticationError) {
        // A rotated key: read it again once; a key that is wrong is the operators' to fix.
        if (mayRefreshKey && (await this.#clients.refresh().catch(() => false))) {
          return await this.#create(params, idempotencyKey, false);
        }
        throw new PaymentGatewayUnavailableError('Stripe refused the API key.', { cause: error });
      }
      if (error instanceof Stripe.errors.StripePermissionError) {
        throw new PaymentGatewayUnavailableError(
          'The Stripe API key may not create PaymentIntents.',
          {
            cause: error,
          },
        );
      }
      if (error instanceof Stripe.errors.StripeError) {
        // 4xx: the request itself is refused (e.g. amount_too_small, an idempotency key
        // reused with other parameters); only the code leaves here, never Stripe's message.
        throw new PaymentRejectedError(error.code ?? error.type ?? 'stripe_error', {
          cause: error,
        });
      }
      throw error;
    }
  }
}
