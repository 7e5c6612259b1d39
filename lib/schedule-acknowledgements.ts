import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';

/**
 * What cdk-nag flags on every EventBridge Scheduler → Lambda target, with why it stays:
 * the schedule's DLQ has no DLQ of its own, and the role Scheduler's L2 target creates
 * may invoke the function's versions (`<arn>:*`), which it grants itself.
 */
export function acknowledgeScheduleTarget(fn: IFunction, scheduleDeadLetterQueue: IQueue): void {
  Validations.of(scheduleDeadLetterQueue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason:
      'This queue is the dead-letter queue of an EventBridge Scheduler target (failed invocations land here and are alarmed); a DLQ has no DLQ.',
  });
  const stack = Stack.of(fn);
  const logicalId = stack.getLogicalId(fn.node.defaultChild as CfnElement);
  Validations.of(stack).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
    reason:
      "The Scheduler target role (made by aws-scheduler-targets' LambdaInvoke) may invoke this one function, its versions included; no other resource.",
  });
}
