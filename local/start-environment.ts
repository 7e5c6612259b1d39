/**
 * `npm start`'s environment defaults, set before any other module is evaluated:
 * start.ts imports this module first, for its side effects only. The shared Powertools
 * logger and metrics read their settings when they are built, at import, and start.ts's
 * other imports reach them (operations/target.ts, through the Stripe wiring); set in
 * main(), these defaults came too late and every handler logged at INFO.
 */

// The pinned SDK supports Node 20; its notice is about releases after January 2027.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Locally, EMF metric blobs would drown the handlers' logs; LOCAL_METRICS=1 shows them.
if (process.env.LOCAL_METRICS !== '1') process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// The runtime prints one line per request and per batch; the handlers' own JSON logs
// appear for errors only, unless LOCAL_LOG_LEVEL=debug (or POWERTOOLS_LOG_LEVEL) asks.
process.env.POWERTOOLS_LOG_LEVEL ??=
  process.env.LOCAL_LOG_LEVEL?.toLowerCase() === 'debug' ? 'DEBUG' : 'ERROR';
