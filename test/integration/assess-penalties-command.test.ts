/**
 * `npm run penalties:assess` as an operator runs it: a child process against DynamoDB
 * Local, assessing a past date to completion; again creates nothing; bad dates refused.
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { DynamoDbPenaltyStore } from '../../functions/adapters/dynamodb/dynamodb-penalty-store.ts';
import {
  DEFAULT_FREE_HABIT_LIMITS,
  MAX_HABITS_PER_USER,
  withSettings,
} from '../../functions/core/penalties/habits.ts';
import { emulatorClients } from '../helpers/aws-clients.ts';
import { createPenaltiesTable } from '../helpers/penalty-table.ts';
import { settings } from '../unit/penalties/penalty-fixtures.ts';

const CREATED = '2026-11-20T12:00:00.000Z';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function run(args: string[]) {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'local/assess-penalties.ts', ...args],
      {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? '',
          AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        timeout: 60_000,
      },
    );
    return { code: 0, out: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: `${failed.stdout}${failed.stderr}` };
  }
}

describe('npm run penalties:assess', () => {
  it('assesses a past date to completion, and again creates nothing', async () => {
    const { dynamo } = emulatorClients();
    const table = await createPenaltiesTable(dynamo);
    const store = new DynamoDbPenaltyStore({ client: dynamo, penaltiesTableName: table });
    for (const user of ['cmd-a', 'cmd-b', 'cmd-c']) {
      const habit = withSettings({ userId: user, habitId: 'run' }, settings(), null, CREATED);
      const written = await store.putHabit({
        habit,
        previous: null,
        freeHabitLimit: DEFAULT_FREE_HABIT_LIMITS.free,
        maxHabits: MAX_HABITS_PER_USER,
      });
      expect(written).toBe('written');
    }
    const first = await run(['--date', '2026-12-01', '--table', table]);
    expect(first.code).toBe(0);
    expect(first.out).toContain('"habits":3,"verified":0,"missed":3,"penaltiesCreated":3');
    expect((await store.getAccount('cmd-b'))?.unpaidCount).toBe(1);
    const again = await run(['--date', '2026-12-01', '--table', table]);
    expect(again.out).toContain('this run: 0 habits, 0 penalties created');
    dynamo.destroy();
  });

  it.each([['2999-01-01'], ['2026-02-30'], ['yesterday']])('refuses --date %s', async (date) => {
    const result = await run(['--date', date, '--table', 'unused']);
    expect(result.code).toBe(1);
    expect(result.out).toContain('--date must be a past UTC date');
  });
});
