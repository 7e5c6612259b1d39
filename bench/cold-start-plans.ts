/**
 * What each cold-start process invokes after the import, so the first (cold) and
 * later (warm) invocations are real work against the emulators: signed webhooks for
 * the webhook, full SQS batches of fresh histories for the consumer, profile reads
 * of users the pipeline created for the read API. Every process gets fresh ids, so
 * no run is a duplicate of another.
 */
import { httpApiEvent, stripeWebhookEvent } from '../test/helpers/apigw-events.ts';
import { sqsBatch } from '../test/helpers/sqs-events.ts';
import { deliver, generateHistory, type StripeEventJson } from '../test/helpers/stripe-history.ts';
import { signPayload } from '../test/helpers/stripe-signing.ts';
import type { InvocationPlan } from './cold-start.ts';
import type { BenchContext } from './context.ts';
import { makeBodySource } from './ingress.ts';
import { subscriptionResources } from './provision.ts';

export interface PlanInputs {
  templates: readonly StripeEventJson[];
  /** Records per consumer invocation; default the mapping's batch size. */
  consumerBatchRecords?: number;
  /** Users known to have a profile (from the pipeline), for the read API. */
  knownUserIds?: readonly string[];
}

export function coldStartPlans(
  ctx: BenchContext,
  inputs: PlanInputs,
): Record<string, InvocationPlan> {
  const { webhook, consumer, mapping } = subscriptionResources(ctx.model);
  const invocations = 1 + ctx.sizes.warmInvocations;
  const plans: Record<string, InvocationPlan> = {};

  plans[webhook.logicalId] = {
    check: 'http',
    events: (run) => {
      const body = makeBodySource(inputs.templates, `cs${Date.now().toString(36)}r${run}`);
      return Array.from({ length: invocations }, (_, i) => {
        const raw = body(i);
        return stripeWebhookEvent(raw, signPayload(raw, ctx.webhookSecret));
      });
    },
  };

  const batchRecords = Math.max(1, Math.round(inputs.consumerBatchRecords ?? mapping.batchSize));
  plans[consumer.logicalId] = {
    check: 'sqs',
    events: (run) => {
      const tag = `cs${Date.now().toString(36)}r${run}`;
      const bodies: string[] = [];
      for (let seed = 1; bodies.length < batchRecords * invocations; seed++) {
        bodies.push(
          ...deliver([generateHistory(seed, { prefix: tag })], seed, { duplicateRate: 0.2 }),
        );
      }
      return Array.from({ length: invocations }, (_, i) =>
        sqsBatch(bodies.slice(i * batchRecords, (i + 1) * batchRecords)),
      );
    },
  };

  const read = ctx.model.routes.find((r) => r.method === 'GET' && r.path.includes('{userId}'));
  const users = inputs.knownUserIds ?? [];
  if (read && users.length > 0) {
    plans[read.functionLogicalId] = {
      check: 'http',
      events: (run) =>
        Array.from({ length: invocations }, (_, i) => {
          const userId = users[(run * invocations + i) % users.length]!;
          const path = read.path.replace('{userId}', encodeURIComponent(userId));
          return httpApiEvent({
            method: 'GET',
            path,
            routeKey: `GET ${read.path}`,
            pathParameters: { userId },
          });
        }),
    };
  }
  return plans;
}
