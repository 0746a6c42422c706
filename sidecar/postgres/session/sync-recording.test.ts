// `recording: {mode: sync}`: while the recorder reports a failure, statements that would have run
// are refused (42501, naming the failure and since when) and the connection stays usable; once
// recording works again they run. A policy without sync mode is not affected by the failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSessionRecorder, type SessionInfo, type SessionRecorder, type SessionRecording } from '../../recording/session-recorder.js';
import { metricSum, startSidecarFixture, type SidecarFixture } from '../testing/sidecar-fixture.js';

/** A file recorder whose health the test decides, standing in for the uploading recorder's. */
class SwitchableRecorder implements SessionRecorder {
  failingSince: number | undefined;
  constructor(private readonly inner: SessionRecorder) {}
  open(info: SessionInfo): SessionRecording {
    return this.inner.open(info);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  unhealthySince(): number | undefined {
    return this.failingSince;
  }
}

const RULES = `  rules:
    - {name: reads, effect: allow, operations: [read, session, transaction]}
    - {name: no-ddl, effect: deny, operations: [ddl]}
`;
const SYNC = `${RULES}  recording: {mode: sync}
`;

let dir: string;
let recorder: SwitchableRecorder;
let f: SidecarFixture;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gh-sync-recording-'));
  recorder = new SwitchableRecorder(new FileSessionRecorder(dir));
  f = await startSidecarFixture({ policyRules: SYNC, sidecar: { recorder } });
});

afterAll(async () => {
  await f?.stop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  recorder.failingSince = undefined;
  await f.reload(SYNC);
});

describe('sync recording mode', () => {
  it('refuses statements while recording fails, on a connection that stays usable', async () => {
    const client = await f.pgClient();
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      recorder.failingSince = Date.parse('2026-11-22T10:00:00Z');
      const refused = await client.query('SELECT 2').then(() => undefined, (error: unknown) => error as { code: string; message: string });
      expect(refused?.code).toBe('42501');
      expect(refused?.message).toContain('session recording is failing since 2026-11-22T10:00:00.000Z');
      expect(refused?.message).toContain('resource db requires it');
      // Prepared statements are refused at Bind in the same way.
      const prepared = await client.query({ text: 'SELECT $1::int AS n', values: [3] }).then(() => undefined, (error: unknown) => error as { code: string });
      expect(prepared?.code).toBe('42501');
      recorder.failingSince = undefined;
      expect((await client.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    } finally {
      await client.end();
    }
    expect(await metricSum(f.metrics.blocked, { rule: 'recording/sync' })).toBeGreaterThanOrEqual(2);
  });

  it('keeps refusing what policy denies anyway with the policy\'s own reason', async () => {
    recorder.failingSince = Date.now();
    const result = await f.psql('DROP TABLE orders');
    expect(result.stderr).toMatch(/no-ddl|denied/i);
    expect(result.stderr).not.toContain('session recording is failing');
  });

  it('lets a policy without sync mode run while recording fails', async () => {
    await f.reload(RULES);
    recorder.failingSince = Date.now();
    const result = await f.psql('SELECT 5');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('5');
  });
});
