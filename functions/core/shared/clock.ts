/** Time as the use cases see it: injected, so tests and the benchmark can drive it. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
