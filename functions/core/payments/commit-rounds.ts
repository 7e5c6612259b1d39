/**
 * How a store commits many payments at once (`PaymentStore.commitAll`): in rounds, each
 * payment at most once a round, the n-th commit of each payment in round n, the rounds
 * one after another. A transaction holds an item once, and a payment's ledger chain
 * needs its commits in order, so a payment named twice gets what two commits in that
 * order give. One round when no payment repeats.
 */
import type { PaymentCommit } from './ports.ts';

export async function commitInRounds<R>(
  commits: readonly PaymentCommit[],
  commitRound: (round: readonly PaymentCommit[]) => Promise<R[]> | R[],
): Promise<R[]> {
  const rounds: number[][] = [];
  const seen = new Map<string, number>();
  commits.forEach((commit, index) => {
    const round = seen.get(commit.paymentId) ?? 0;
    seen.set(commit.paymentId, round + 1);
    if (round === rounds.length) rounds.push([]);
    rounds[round]!.push(index);
  });
  if (rounds.length <= 1) return await commitRound(commits);
  const results: R[] = new Array(commits.length);
  for (const round of rounds) {
    const roundResults = await commitRound(round.map((index) => commits[index]!));
    round.forEach((index, position) => {
      results[index] = roundResults[position]!;
    });
  }
  return results;
}
