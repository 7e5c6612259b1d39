/**
 * Aggregates as stored: brotli-compressed JSON. A folded account or payment is
 * 0.6-2 KB as a DynamoDB map and about a third of that compressed, which keeps its
 * item within one or two 1 KB write units (doubled in a transaction) on every commit.
 * Decode by hand with
 * `node -e "console.log(zlib.brotliDecompressSync(Buffer.from(process.argv[1], 'base64')).toString())" <base64>`.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';

export function encodeCompressedJson(value: unknown): Uint8Array {
  return brotliCompressSync(JSON.stringify(value), {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 5,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });
}

/** Reads what `encodeCompressedJson` wrote, or a plain map (items written before compression). */
export function decodeCompressedJson<T>(stored: unknown): T {
  if (stored instanceof Uint8Array) {
    return JSON.parse(brotliDecompressSync(stored).toString('utf8')) as T;
  }
  return stored as T;
}
