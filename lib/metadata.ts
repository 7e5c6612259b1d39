/**
 * Keys shared by the constructs that write them and the local stack model that reads
 * them back from the synthesized templates.
 */
export const METADATA = {
  /** On each AWS::Lambda::Function: the repo-relative handler entry file. */
  entry: 'billing:entry',
  /** On each table and queue: the stable name the local runtime gives it. */
  localName: 'billing:localName',
} as const;

/** Context key: `false` replaces bundled code with an inline placeholder (no esbuild run). */
export const BUNDLE_CONTEXT_KEY = 'billing:bundle';

/** Prefix of every local resource name, so emulator data is found again after a restart. */
export const LOCAL_NAME_PREFIX = 'billing-suite';
