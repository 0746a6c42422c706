import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSessionRecorder } from './session-recorder.js';

describe('FileSessionRecorder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gh-rec-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('writes one JSON line per event, in order, after a session header', async () => {
    const recorder = new FileSessionRecorder(join(dir, 'nested'));
    const recording = recorder.open({ session: 's1', identity: 'ci', resource: 'db', protocol: 'postgres' });
    const at = new Date(0).toISOString();
    recording.write({ type: 'connect', at, client: { application_name: 'psql' } });
    recording.write({ type: 'statement', at, text: 'DROP TABLE t', operation: 'ddl', decision: 'deny', rule: 'p/no-ddl' });
    recording.write({ type: 'disconnect', at, reason: 'client closed', durationMs: 3 });
    await recording.end();
    const lines = (await readFile(join(dir, 'nested', 's1.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.type)).toEqual(['session', 'connect', 'statement', 'disconnect']);
    expect(lines[0]).toMatchObject({ identity: 'ci', resource: 'db' });
    expect(lines[2]).toMatchObject({ decision: 'deny', rule: 'p/no-ddl' });
  });
});

describe('FileSessionRecorder batching', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gh-rec-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('keeps every line whole and in order across many batches, multi-byte text and lines longer than a batch included', async () => {
    const recorder = new FileSessionRecorder(dir);
    const recording = recorder.open({ session: 's2', identity: 'ci', resource: 'db', protocol: 'postgres' });
    const at = new Date(0).toISOString();
    const texts = Array.from({ length: 5000 }, (_, index) =>
      index % 1000 === 7 ? `SELECT '${'ü€😀'.repeat(30_000)}'` : `SELECT ${index} -- Zoë ${'x'.repeat(index % 97)}`,
    );
    for (const text of texts) recording.write({ type: 'statement', at, text, operation: 'read', decision: 'allow' });
    await recording.end();
    const lines = (await readFile(join(dir, 's2.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.slice(1).map((line) => line.text)).toEqual(texts);
  });
});
