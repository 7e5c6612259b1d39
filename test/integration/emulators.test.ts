import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  assertJavaAvailable,
  assertWritableDir,
  findFreePort,
  PrerequisiteError,
} from '../../local/emulators.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('emulator processes and prerequisites', () => {
  it('never leaves DynamoDB Local running when its parent is killed outright', async () => {
    const port = await findFreePort();
    const script = `import { startDynamoDbLocal } from './local/emulators.ts';
      await startDynamoDbLocal({ port: ${port} }); console.log('ready'); setInterval(() => {}, 1000);`;
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      parent.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      parent.once('exit', (code) => reject(new Error(`parent exited early with ${code}`)));
    });
    expect(await portOpen(port)).toBe(true);
    parent.kill('SIGKILL');
    let open = true;
    for (let attempt = 0; attempt < 50 && open; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      open = await portOpen(port);
    }
    expect(open).toBe(false);
  }, 90_000);

  it('says in one line that Java is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const error = await assertJavaAvailable().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(PrerequisiteError);
      expect((error as Error).message).toMatch(
        /^Java 17\+ is required for DynamoDB Local but `java` was not found on PATH/,
      );
      expect((error as Error).message).not.toContain('\n');
    } finally {
      process.env.PATH = path;
    }
  });

  it('says in one line that the data folder is not writable', async () => {
    // A folder under a regular file can never be created, even by root.
    const dir = await mkdtemp(join(tmpdir(), 'billing-'));
    try {
      const file = join(dir, 'a-file');
      await writeFile(file, '');
      const error = await assertWritableDir(join(file, 'data'), 'LOCAL_DATA_DIR').catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(PrerequisiteError);
      expect((error as Error).message).toMatch(
        /^Data folder .*a-file\/data is not writable \(ENOTDIR\)\. Set LOCAL_DATA_DIR/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
