#!/usr/bin/env node
// Runs before `npm start` and `npm test`: one clear line per missing prerequisite
// instead of a stack trace from deep inside an emulator.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const problems = [];
const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) problems.push(`Node.js 20+ is required, found ${process.versions.node}.`);

// `java -XshowSettings:properties -version` prints the spec version on stderr.
const java = spawnSync('java', ['-XshowSettings:properties', '-version'], { encoding: 'utf8' });
if (java.error) {
  problems.push(
    'Java 17+ is required by DynamoDB Local, but `java` was not found on PATH (Debian: apt-get install openjdk-17-jre-headless).',
  );
} else {
  const match = /java\.specification\.version = (\d+)(?:\.(\d+))?/.exec(java.stderr ?? '');
  const major = match ? (match[1] === '1' ? Number(match[2]) : Number(match[1])) : 0;
  if (major < 17) {
    problems.push(
      `Java 17+ is required by DynamoDB Local, found ${major ? `Java ${major}` : 'an unknown Java'}.`,
    );
  }
}
if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  problems.push('Dependencies are not installed: run `npm ci` first.');
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`prerequisite: ${problem}`);
  process.exit(1);
}
