/**
 * The pages of a ledger pack as stored (`pages` of a LEDGER# item): JSON deflated with
 * the preset dictionary below, so field names, event types and outcomes cost a few bits
 * each and what remains is mostly the ids' own randomness. A pack of seven pages (a
 * typical transaction's) is about 2.7 KB as a DynamoDB list of maps and about 0.8 KB
 * this way: the pack is written in the commit's transaction, where each 1 KB costs two
 * write units, so this is two units a pack instead of six (docs/payments-capacity.md).
 * Packs written before hold the pages as a list of maps; both read back.
 */
import type { LedgerEvent } from '../../core/shared/event-ledger.ts';
import {
  decodeCompressedJson,
  encodeCompressedJson,
  type PresetDictionary,
} from './compressed-json.ts';

/** One commit's ledger page, as a pack holds it. */
export interface PackedLedgerPage {
  paymentId: string;
  revision: number;
  appliedAt: number;
  events: LedgerEvent[];
  /** The ref of the pack holding this payment's page before; null for its first. */
  prev: string | null;
}

/**
 * Dictionary 1: a page's skeleton and every payment event type. Deflate codes nearer
 * matches more cheaply, so the commonest fragments come last. Part of the stored
 * format: do not edit; a better one gets id 2 and is added to the list.
 */
const LEDGER_PAGES_DICTIONARY_1: PresetDictionary = {
  id: 1,
  bytes: Buffer.from(
    [
      'checkout.session.completed","charge.dispute.closed","charge.dispute.created",',
      'charge.refund.updated","refund.updated","refund.created","charge.refunded",',
      'charge.failed","charge.succeeded","payment_intent.canceled",',
      'payment_intent.payment_failed","payment_intent.processing","payment_intent.created",',
      '"outcome":"stale","receivedAt":null},"prev":null},',
      '[{"paymentId":"pi_3","revision":1,"appliedAt":17,"events":[{"eventId":"evt_3',
      '","type":"payment_intent.succeeded","outcome":"applied","receivedAt":17',
      '}],"prev":"',
    ].join(''),
  ),
};

const DICTIONARIES = [LEDGER_PAGES_DICTIONARY_1];

export function encodeLedgerPages(pages: readonly PackedLedgerPage[]): Uint8Array {
  return encodeCompressedJson(pages, LEDGER_PAGES_DICTIONARY_1);
}

/** Reads what `encodeLedgerPages` wrote, or the list of maps of an earlier pack. */
export function decodeLedgerPages(stored: unknown): PackedLedgerPage[] {
  const pages = decodeCompressedJson<unknown>(stored, DICTIONARIES);
  if (!Array.isArray(pages)) throw new Error('ledger pack: pages are not a list');
  return pages as PackedLedgerPage[];
}
