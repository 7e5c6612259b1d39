/** What was thrown, as an Error (a thrown string or object keeps its text as the message). */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
