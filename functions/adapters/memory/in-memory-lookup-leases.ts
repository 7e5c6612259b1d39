/** In-memory StripeLookupLeases with the DynamoDB adapter's semantics (one contract suite runs against both). */
import type {
  LeaseOutcome,
  LookupLease,
  StripeLookupLeases,
} from '../../core/subscriptions/ports.ts';

export class InMemoryStripeLookupLeases implements StripeLookupLeases {
  readonly leases = new Map<string, LookupLease & { token: string }>();
  /** Leases taken, for assertions. */
  acquired = 0;

  async acquire(
    userId: string,
    token: string,
    nowMs: number,
    untilMs: number,
  ): Promise<LookupLease | null> {
    const held = this.leases.get(userId);
    if (held && held.untilMs > nowMs) return { state: held.state, untilMs: held.untilMs };
    this.leases.set(userId, { token, state: 'running', untilMs });
    this.acquired += 1;
    return null;
  }

  async read(userId: string): Promise<LookupLease | null> {
    const held = this.leases.get(userId);
    return held ? { state: held.state, untilMs: held.untilMs } : null;
  }

  async end(userId: string, token: string, outcome: LeaseOutcome): Promise<void> {
    const held = this.leases.get(userId);
    if (held?.token !== token) return;
    this.leases.set(
      userId,
      outcome.state === 'released'
        ? { token, state: 'running', untilMs: 0 }
        : { token, state: outcome.state, untilMs: outcome.untilMs },
    );
  }
}
