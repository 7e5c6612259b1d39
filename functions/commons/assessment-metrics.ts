/**
 * The assessment's metrics, the same for the schedule and the operators' route:
 * PenaltiesCreated and PenaltyHabitsAssessed count every commit as it lands, so a run
 * that fails half-way still reports the penalties it did create (the run that resumes
 * counts only its own, so each penalty is counted once); PenaltyAssessmentDuration
 * only for a run that returned.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  type AssessDeps,
  assessInOrder,
  type InOrderAssessment,
  sumCounts,
} from '../core/penalties/assessment.ts';
import type { AssessmentCounts } from '../core/penalties/ports.ts';
import { METRIC } from './metric-names.ts';

export async function assessInOrderMeasured(
  date: string,
  deps: AssessDeps,
  metrics: Metrics,
): Promise<InOrderAssessment> {
  const started = deps.clock.now();
  const committed: AssessmentCounts[] = [];
  const emitCounts = () => {
    const { penaltiesCreated, habits } = sumCounts(committed);
    metrics.addMetric(METRIC.penaltiesCreated, MetricUnit.Count, penaltiesCreated);
    metrics.addMetric(METRIC.penaltyHabitsAssessed, MetricUnit.Count, habits);
  };
  let assessed: InOrderAssessment;
  try {
    assessed = await assessInOrder(date, {
      ...deps,
      onCommitted: (counts) => {
        committed.push(counts);
        deps.onCommitted?.(counts);
      },
    });
  } catch (error) {
    if (committed.length > 0) emitCounts();
    throw error;
  }
  emitCounts();
  metrics.addMetric(
    METRIC.penaltyAssessmentDuration,
    MetricUnit.Milliseconds,
    deps.clock.now() - started,
  );
  return assessed;
}
