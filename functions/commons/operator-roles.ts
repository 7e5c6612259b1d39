/**
 * Operator roles as the stack names them (role ARNs) and as a request shows them (a
 * session's `userArn` names the role without its path): compared by account and name.
 * Pure, so the CDK app checks at synth what the functions parse at run time.
 */

/** A role by its account and name (no path). */
export interface OperatorRole {
  account: string;
  name: string;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[^/]+\/)*([\w+=,.@-]{1,64})$/;

/** `arn:aws:iam::<account>:role/<path/><name>` → its account and name; throws on anything else. */
export function operatorRoleOf(roleArn: string): OperatorRole {
  const match = ROLE_ARN.exec(roleArn);
  if (!match) throw new Error(`not an IAM role ARN: ${roleArn}`);
  return { account: match[1]!, name: match[2]! };
}
