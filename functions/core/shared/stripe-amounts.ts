/**
 * Stripe's smallest charge per presentment currency, in the API's minor units
 * (docs.stripe.com/currencies, "Minimum and maximum charge amounts"). Stripe refuses a
 * PaymentIntent below it (`amount_too_small`). Currencies not listed have a minimum of
 * about USD 0.50 at the day's exchange rate, which cannot be known offline.
 */
export const STRIPE_MINIMUM_CHARGE: Readonly<Record<string, number>> = {
  usd: 50,
  aed: 200,
  aud: 50,
  bgn: 100,
  brl: 50,
  cad: 50,
  chf: 50,
  czk: 1_500,
  dkk: 250,
  eur: 50,
  gbp: 30,
  hkd: 400,
  // Two-decimal in the API although paid out in whole forints: HUF 175.00.
  huf: 17_500,
  inr: 50,
  // Zero-decimal: the amount is in yen.
  jpy: 50,
  mxn: 1_000,
  myr: 200,
  nok: 300,
  nzd: 50,
  pln: 200,
  ron: 200,
  sek: 300,
  sgd: 50,
  thb: 1_000,
};

/** Stripe's smallest charge in `currency` (lower-case ISO 4217), 1 when Stripe publishes none for it. */
export function minimumChargeOf(currency: string): number {
  return Object.hasOwn(STRIPE_MINIMUM_CHARGE, currency) ? STRIPE_MINIMUM_CHARGE[currency]! : 1;
}
