/**
 * Helpers for the end-to-end tests: everything goes through the local runtime's HTTP
 * API with real signed payloads, like Stripe and the app backend would.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { familiesFor } from '../../functions/core/shared/event-families.ts';
import { localDynamoDbClient } from '../../local/emulators.ts';
import type { LocalRuntime } from '../../local/runtime.ts';
import type { StripeEventJson } from '../../local/send-sample.ts';
import { signPayload } from '../helpers/stripe-signing.ts';

/** The read API's answer, as the contract describes it. */
export interface SubscriptionAnswer {
  userId: string;
  tier: string;
  status: string | null;
  stripeCustomerId: string | null;
  subscriptionId: string | null;
  currentPeriodEnd: string | null;
  cancelAtPeriodEnd: boolean | null;
}

export function uniqueUserId(prefix = 'e2e'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** POSTs `rawBody` (default: the event as pretty JSON, like Stripe) signed with `secret`. */
export async function postWebhook(
  runtime: Pick<LocalRuntime, 'apiUrl' | 'webhookSecret'>,
  event: StripeEventJson,
  options: { secret?: string; rawBody?: string; signedBody?: string } = {},
): Promise<Response> {
  const rawBody = options.rawBody ?? JSON.stringify(event, null, 2);
  const signature = signPayload(
    options.signedBody ?? rawBody,
    options.secret ?? runtime.webhookSecret,
  );
  return await fetch(`${runtime.apiUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature },
    body: rawBody,
  });
}

/** `GET <api><path>` and its JSON answer. */
export async function getJson<B = Record<string, unknown>>(
  runtime: Pick<LocalRuntime, 'apiUrl'>,
  path: string,
): Promise<{ status: number; body: B }> {
  const res = await fetch(`${runtime.apiUrl}${path}`);
  return { status: res.status, body: (await res.json()) as B };
}

export async function getSubscription(
  runtime: Pick<LocalRuntime, 'apiUrl'>,
  userId: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${runtime.apiUrl}/users/${encodeURIComponent(userId)}/subscription`);
  return { status: res.status, body: await res.json() };
}

/** Polls `probe` until it returns a value (not undefined); fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the read API shows `subscriptionId` for the user, and returns the answer. */
export async function waitForSubscription(
  runtime: Pick<LocalRuntime, 'apiUrl'>,
  userId: string,
  match: (answer: SubscriptionAnswer) => boolean,
): Promise<SubscriptionAnswer> {
  return await eventually(
    async () => {
      const { status, body } = await getSubscription(runtime, userId);
      return status === 200 && match(body as SubscriptionAnswer)
        ? (body as SubscriptionAnswer)
        : undefined;
    },
    20_000,
    `the subscription of ${userId}`,
  );
}

/** Every item of every table of the runtime, sorted: the whole stored state. */
export async function dumpTables(
  runtime: Pick<LocalRuntime, 'dynamoEndpoint' | 'tableNames'>,
): Promise<Record<string, string[]>> {
  const client = localDynamoDbClient(runtime.dynamoEndpoint);
  try {
    const dump: Record<string, string[]> = {};
    for (const table of Object.values(runtime.tableNames)) {
      const items: string[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({
            TableName: table,
            ConsistentRead: true,
            ...(startKey ? { ExclusiveStartKey: startKey as never } : {}),
          }),
        );
        items.push(...(page.Items ?? []).map(canonicalJson));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      dump[table] = items.sort();
    }
    return dump;
  } finally {
    client.destroy();
  }
}

/** Records the consumer has finished (deleted or left to retry) so far. */
/** Queue records a set of deliveries makes: one per family that consumes each event's type. */
export function recordsFor(events: readonly Pick<StripeEventJson, 'type'>[]): number {
  return events.reduce((sum, event) => sum + familiesFor(event.type).length, 0);
}

export function consumed(runtime: Pick<LocalRuntime, 'consumers'>): number {
  return runtime.consumers.reduce((sum, c) => sum + c.stats().records, 0);
}

/** JSON with object keys sorted at every level, so equal items compare equal. */
function canonicalJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sortKeys(value));
}
