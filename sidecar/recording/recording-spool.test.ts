// The spool file as the uploader sees it: lines appended in runs, compaction to the unacknowledged
// lines, and reading back after a restart (torn and damaged lines skipped, runs split where seq breaks).
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lineOffset, readSpool, SpoolFile, spoolPath, type SpoolSessionInfo } from './recording-spool.js';

const INFO: SpoolSessionInfo = { session: 'sess-1', identity: 'ci-runner', resource: 'orders-db', protocol: 'postgres', startedAt: '2026-11-22T10:00:00.000Z' };

function line(seq: number, type = 'statement'): string {
  return `${JSON.stringify({ seq, at: '2026-11-22T10:00:01.000Z', type, payload: { text: `SELECT ${seq}` } })}\n`;
}

function lines(from: number, to: number): string {
  let text = '';
  for (let seq = from; seq <= to; seq += 1) text += line(seq);
  return text;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-spool-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('lineOffset', () => {
  test('finds the end of the n-th line, and the end of data with fewer lines', () => {
    const data = Buffer.from('a\nbb\nccc\n');
    expect([0, 1, 2, 3, 4].map((count) => lineOffset(data, count))).toEqual([0, 2, 5, 9, 9]);
  });
});

describe('SpoolFile', () => {
  test('writes the session line once, then appended runs; reads back as one run', async () => {
    const file = new SpoolFile(spoolPath(dir, INFO.session), INFO);
    await file.append(Buffer.from(lines(1, 2)));
    await file.append(Buffer.from(lines(3, 3)));
    const text = await readFile(spoolPath(dir, INFO.session), 'utf8');
    expect(text.split('\n')[0]).toBe(JSON.stringify({ kind: 'session', ...INFO }));
    const [session] = await readSpool(dir);
    expect(session).toMatchObject({ info: INFO, lastSeq: 3, lastType: 'statement', fileBytes: Buffer.byteLength(text) });
    expect(session!.runs.map((run) => [run.firstSeq, run.count, run.data.toString()])).toEqual([[1, 3, lines(1, 3)]]);
  });

  test('compacts to the lines the uploader still holds once most of a large file is acknowledged', async () => {
    const file = new SpoolFile(spoolPath(dir, INFO.session), INFO);
    const big = Buffer.from(lines(1, 20_000));
    await file.append(big);
    const unacked = Buffer.from(lines(20_001, 20_002));
    await file.append(unacked);
    // A small acknowledgement leaves the file as it is.
    await file.acknowledged(100, () => [unacked]);
    expect((await readFile(spoolPath(dir, INFO.session), 'utf8')).length).toBeGreaterThan(big.length);
    await file.acknowledged(big.length, () => [unacked]);
    const [session] = await readSpool(dir);
    expect(session!.runs.map((run) => [run.firstSeq, run.count])).toEqual([[20_001, 2]]);
    expect(file.fileBytes).toBe(session!.fileBytes);
  });

  test('remove and quarantine', async () => {
    const file = new SpoolFile(spoolPath(dir, INFO.session), INFO);
    await file.append(Buffer.from(lines(1, 1)));
    await file.quarantine();
    expect(await readdir(dir)).toEqual(['sess-1.spool.refused']);
    const other = new SpoolFile(spoolPath(dir, 'sess-2'), { ...INFO, session: 'sess-2' });
    await other.append(Buffer.from(lines(1, 1)));
    await other.remove();
    expect(await readdir(dir)).toEqual(['sess-1.spool.refused']);
  });
});

describe('readSpool', () => {
  test('skips a torn last line and damaged lines, and splits runs where seq numbers do not follow on', async () => {
    const header = `${JSON.stringify({ kind: 'session', ...INFO })}\n`;
    await writeFile(spoolPath(dir, INFO.session), `${header}${lines(1, 2)}{"seq":3,"at":\n${lines(5, 6)}${line(7, 'end')}{"seq":8,"at":"2026`);
    const [session] = await readSpool(dir);
    expect(session!.runs.map((run) => [run.firstSeq, run.count, run.data.toString()])).toEqual([
      [1, 2, lines(1, 2)],
      [5, 3, lines(5, 6) + line(7, 'end')],
    ]);
    expect(session).toMatchObject({ lastSeq: 7, lastType: 'end' });
  });

  test('a file without a readable session line is moved aside, not uploaded', async () => {
    await writeFile(spoolPath(dir, INFO.session), `not json\n${lines(1, 1)}`);
    expect(await readSpool(dir)).toEqual([]);
    expect(await readdir(dir)).toEqual(['sess-1.spool.unreadable']);
  });
});
