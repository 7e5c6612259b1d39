/**
 * Aggregates as stored: compressed JSON, in one of two formats.
 *
 * - Brotli (quality 5): a folded account or payment is 0.6-2 KB as a DynamoDB map and
 *   about a third of that compressed, which keeps its item within one or two 1 KB
 *   write units (doubled in a transaction) on every commit.
 * - Raw deflate with a preset dictionary: for small, same-shaped documents whose field
 *   names brotli's built-in dictionary does not know. The dictionary primes the window
 *   with the document's usual field names and fragments, so even the first occurrence
 *   of each costs a back-reference (a payment state: 350 bytes brotli, 185 this way).
 *   Stored as `0xD1, <dictionary id>, <deflate-raw bytes>`. A dictionary is part of the
 *   stored format: never edit one, add another with a new id.
 *
 * Brotli streams as written here start with a byte whose low 4 bits are 0xB (the
 * window-size code for the default 4 MB window); 0xD1 is therefore never a brotli start.
 * Decode a brotli value by hand with
 * `node -e "console.log(zlib.brotliDecompressSync(Buffer.from(process.argv[1], 'base64')).toString())" <base64>`
 * and a dictionary one with `zlib.inflateRawSync(bytes.subarray(2), { dictionary })`.
 */
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  deflateRawSync,
  inflateRawSync,
} from 'node:zlib';

/** A preset dictionary for `encodeCompressedJson`; `id` is stored with every value. */
export interface PresetDictionary {
  /** 0-255, unique among the dictionaries one attribute may hold. */
  id: number;
  bytes: Buffer;
}

const DICTIONARY_FORMAT = 0xd1;

export function encodeCompressedJson(value: unknown, dictionary?: PresetDictionary): Uint8Array {
  const json = JSON.stringify(value);
  if (dictionary) {
    const deflated = deflateRawSync(json, { level: 9, dictionary: dictionary.bytes });
    const stored = new Uint8Array(deflated.byteLength + 2);
    stored[0] = DICTIONARY_FORMAT;
    stored[1] = dictionary.id;
    stored.set(deflated, 2);
    return stored;
  }
  return brotliCompressSync(json, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 5,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });
}

/**
 * Reads what `encodeCompressedJson` wrote (either format; a dictionary value needs its
 * dictionary among `dictionaries`), or a plain map (items written before compression).
 */
export function decodeCompressedJson<T>(
  stored: unknown,
  dictionaries: readonly PresetDictionary[] = [],
): T {
  if (!(stored instanceof Uint8Array)) return stored as T;
  if (stored[0] === DICTIONARY_FORMAT) {
    const dictionary = dictionaries.find((candidate) => candidate.id === stored[1]);
    if (!dictionary) throw new Error(`compressed JSON: unknown dictionary ${stored[1]}`);
    const json = inflateRawSync(stored.subarray(2), { dictionary: dictionary.bytes });
    return JSON.parse(json.toString('utf8')) as T;
  }
  return JSON.parse(brotliDecompressSync(stored).toString('utf8')) as T;
}
