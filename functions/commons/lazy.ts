/**
 * Builds a value on first call and returns the same one afterwards: how handlers
 * defer clients, env parsing and wiring to the first invocation (nothing at import
 * time) and then reuse them while the Lambda is warm.
 */
export function lazy<T>(make: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    if (!built) built = { value: make() };
    return built.value;
  };
}
