import { CompactSign } from 'jose';
import { canonicalJson } from './canonical-json.js';
import { checkpointSignerFromPem, generateCheckpointSigner, parseCheckpointKeys, type CheckpointKeys, type CheckpointSigner } from './checkpoint.js';
import { eventHash, RecordingChain, toLine, type EventLine, type RecordingHeader } from './recording-format.js';
import { verifyRecording, type RecordingVerification } from './verify-recording.js';

const HEADER: RecordingHeader = {
  kind: 'header', version: 1, session: 's-1', node: 'payments/app-0', identity: 'ci-runner', resource: 'orders-db',
  protocol: 'postgres', startedAt: '2026-11-22T10:00:00.000Z', part: 1, firstSeq: 1,
};

let signer: CheckpointSigner;
let keys: CheckpointKeys;

beforeAll(async () => {
  signer = await generateCheckpointSigner();
  keys = await parseCheckpointKeys(JSON.stringify({ keys: [signer.publicJwk] }));
});

/** A sealed recording of `count` statements, as lines (text.split('\n')). */
async function recording(count = 5, header: RecordingHeader = HEADER): Promise<string[]> {
  const chain = RecordingChain.start(header);
  let text = toLine(chain.header);
  for (let seq = 1; seq <= count; seq += 1) {
    const at = new Date(Date.parse(header.startedAt) + seq * 1000).toISOString();
    text += toLine(chain.append({ seq, at, type: 'statement', payload: { text: `SELECT ${seq}`, decision: 'allow', operation: 'read' } }));
  }
  const checkpoint = await signer.sign({
    session: header.session, part: 1, node: header.node, status: 'sealed', events: chain.events, firstSeq: 1, lastSeq: count,
    headerHash: chain.header.hash, lastHash: chain.lastHash, firstAt: chain.firstAt, lastAt: chain.lastAt, sealedAt: '2026-11-22T10:01:00.000Z',
  });
  text += toLine({ kind: 'seal', status: 'sealed', checkpoint });
  return text.split('\n');
}

function problemsOf(result: RecordingVerification) {
  if (result.status !== 'tampered') throw new Error(`expected tampering to be found, got ${result.status}`);
  return result.problems.map(({ kind, line, seq }) => ({ kind, line, seq }));
}

function edit(lines: string[], index: number, change: (event: EventLine) => EventLine): string[] {
  const copy = [...lines];
  copy[index] = JSON.stringify(change(JSON.parse(copy[index]!) as EventLine));
  return copy;
}

describe('verifyRecording', () => {
  test('an untouched sealed recording is intact, with the checkpoint facts', async () => {
    const result = await verifyRecording(await recording(), undefined, keys);
    expect(result.status).toBe('intact');
    if (result.status !== 'intact') return;
    expect(result.events).toBe(5);
    expect(result.checkpoint).toMatchObject({ session: 's-1', events: 5, lastSeq: 5, status: 'sealed', kid: signer.kid, firstAt: '2026-11-22T10:00:01.000Z' });
  });

  test('key order inside an event does not change its hash (canonical JSON)', () => {
    const a = eventHash('x', { seq: 1, at: 't', type: 'statement', payload: { b: 1, a: [1, { d: 2, c: 3 }] } });
    const b = eventHash('x', { payload: { a: [1, { c: 3, d: 2 }], b: 1 }, type: 'statement', at: 't', seq: 1 });
    expect(a).toBe(b);
    expect(canonicalJson({ b: 1, a: undefined, c: [undefined] })).toBe('{"b":1,"c":[null]}');
  });

  test('an edited field is found at its line and seq', async () => {
    const lines = edit(await recording(), 3, (event) => ({ ...event, payload: { ...event.payload, text: 'SELECT 1 -- harmless' } }));
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'edited', line: 4, seq: 3 }]);
  });

  test('an event whose payload is nested too deeply to hash is reported as edited, not thrown', async () => {
    // Written as text: JSON.parse reads any depth, JSON.stringify (like a recursive hash) would overflow.
    const lines = await recording();
    lines[3] = lines[3]!.replace('"payload":{', `"payload":{"deep":${'['.repeat(100_000)}"x"${']'.repeat(100_000)},`);
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'edited', line: 4, seq: 3 }]);
  });

  test('an edited event whose hash was recomputed is found through the next line\'s link', async () => {
    const lines = edit(await recording(), 2, (event) => {
      const changed = { ...event, type: 'error' };
      return { ...changed, hash: eventHash(event.prev, changed) };
    });
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'edited', line: 3, seq: 2 }]);
  });

  test('a dropped event is named by the missing seq', async () => {
    const lines = await recording();
    lines.splice(3, 1);
    const problems = (await verifyRecording(lines, undefined, keys)) as Extract<RecordingVerification, { status: 'tampered' }>;
    expect(problemsOf(problems)).toEqual([{ kind: 'missing', line: 4, seq: 4 }]);
    expect(problems.problems[0]!.message).toContain('seq 3 is missing');
  });

  test('reordered events are named', async () => {
    const lines = await recording();
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([
      { kind: 'out-of-order', line: 3, seq: 3 },
      { kind: 'out-of-order', line: 4, seq: 2 },
    ]);
  });

  test('an inserted event, even one hashed into the chain, is found', async () => {
    const lines = await recording();
    const before = JSON.parse(lines[2]!) as EventLine;
    const forged = { seq: 3, at: before.at, type: 'statement', payload: { text: 'SELECT forged' } };
    lines.splice(3, 0, JSON.stringify({ ...forged, prev: before.hash, hash: eventHash(before.hash, forged) }));
    const result = await verifyRecording(lines, undefined, keys);
    expect(problemsOf(result)).toEqual([{ kind: 'inserted', line: 5, seq: 3 }]);
    expect((result as Extract<RecordingVerification, { status: 'tampered' }>).problems[0]!.message).toContain('lines 4 and 5');
  });

  test('a line appended after the seal is found', async () => {
    const lines = await recording();
    const last = JSON.parse(lines[5]!) as EventLine;
    const extra = { seq: 6, at: last.at, type: 'statement', payload: { text: 'SELECT 6' } };
    lines.splice(7, 0, JSON.stringify({ ...extra, prev: last.hash, hash: eventHash(last.hash, extra) }));
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'appended', line: 8, seq: 6 }]);
  });

  test('an event appended before a re-attached seal is past the checkpoint', async () => {
    const lines = await recording();
    const seal = lines[6]!;
    const last = JSON.parse(lines[5]!) as EventLine;
    const extra = { seq: 6, at: last.at, type: 'statement', payload: { text: 'SELECT 6' } };
    lines.splice(6, 1, JSON.stringify({ ...extra, prev: last.hash, hash: eventHash(last.hash, extra) }), seal);
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'appended', line: 7, seq: 6 }]);
  });

  test('a file cut inside a line is truncated there', async () => {
    const text = (await recording()).join('\n');
    const cut = text.slice(0, text.indexOf('SELECT 4')).split('\n');
    expect(problemsOf(await verifyRecording(cut, undefined, keys))).toEqual([{ kind: 'truncated', line: 5, seq: undefined }]);
  });

  test('a file cut at a line boundary with its seal gone is open, and fails against the checkpoint', async () => {
    const lines = await recording();
    const seal = JSON.parse(lines[6]!) as { checkpoint: string };
    const cut = [...lines.slice(0, 4), ''];
    const open = await verifyRecording(cut, undefined, keys);
    expect(open.status).toBe('open');
    expect(problemsOf(await verifyRecording(cut, seal.checkpoint, keys))).toEqual([{ kind: 'truncated', line: undefined, seq: 4 }]);
  });

  test('a checkpoint swapped in from another session is refused', async () => {
    const lines = await recording();
    const other = await recording(5, { ...HEADER, session: 's-2' });
    lines[6] = other[6]!;
    const problems = problemsOf(await verifyRecording(lines, undefined, keys));
    expect(problems).toEqual([{ kind: 'checkpoint-mismatch', line: undefined, seq: undefined }]);
  });

  test('a checkpoint signed by another key is unknown; with that key\'s kid it is a bad signature', async () => {
    const lines = await recording();
    const intruder = await generateCheckpointSigner();
    const seal = JSON.parse(lines[6]!) as { checkpoint: string };
    const payload = JSON.parse(Buffer.from(seal.checkpoint.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const foreign = await intruder.sign(payload as never);
    lines[6] = JSON.stringify({ kind: 'seal', status: 'sealed', checkpoint: foreign });
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'unknown-key', line: 7, seq: undefined }]);
    const [, body, signature] = foreign.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: signer.kid })).toString('base64url');
    lines[6] = JSON.stringify({ kind: 'seal', status: 'sealed', checkpoint: `${header}.${body}.${signature}` });
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'bad-signature', line: 7, seq: undefined }]);
  });

  test('alg none and HMAC checkpoints are refused', async () => {
    const lines = await recording();
    const seal = JSON.parse(lines[6]!) as { checkpoint: string };
    const body = seal.checkpoint.split('.')[1]!;
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: signer.kid })).toString('base64url')}.${body}.`;
    expect(problemsOf(await verifyRecording(lines, none, keys)).map((problem) => problem.kind)).toEqual(['checkpoint-mismatch', 'bad-signature']);
    lines[6] = JSON.stringify({ kind: 'seal', status: 'sealed', checkpoint: none });
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'bad-signature', line: 7, seq: undefined }]);
    const hmac = await new CompactSign(Buffer.from(body, 'base64url')).setProtectedHeader({ alg: 'HS256', kid: signer.kid }).sign(new Uint8Array(32));
    lines[6] = JSON.stringify({ kind: 'seal', status: 'sealed', checkpoint: hmac });
    expect(problemsOf(await verifyRecording(lines, undefined, keys))).toEqual([{ kind: 'bad-signature', line: 7, seq: undefined }]);
  });

  test('a rewritten chain with a recomputed tail still fails against the checkpoint', async () => {
    const lines = await recording(3);
    const chain = RecordingChain.start(HEADER);
    const rebuilt = [toLine(chain.header)];
    for (let seq = 1; seq <= 3; seq += 1) rebuilt.push(toLine(chain.append({ seq, at: HEADER.startedAt, type: 'statement', payload: { text: 'rewritten' } })));
    const forged = [...rebuilt.join('').split('\n').slice(0, -1), lines[4]!, ''];
    expect(problemsOf(await verifyRecording(forged, undefined, keys)).map((problem) => problem.kind)).toEqual(['checkpoint-mismatch']);
  });

  test('an edited header is found on line 1; garbage and empty files are tampered, not thrown', async () => {
    const lines = await recording();
    lines[0] = lines[0]!.replace('ci-runner', 'someone-else');
    const problems = problemsOf(await verifyRecording(lines, undefined, keys));
    expect(problems[0]).toEqual({ kind: 'bad-header', line: 1, seq: undefined });
    expect(problemsOf(await verifyRecording(['not json', ''], undefined, keys))).toEqual([{ kind: 'bad-header', line: 1, seq: undefined }]);
    expect(problemsOf(await verifyRecording([''], undefined, keys))).toEqual([{ kind: 'truncated', line: 1, seq: undefined }]);
  });

  test('keys load from a PEM public key too, indexed by thumbprint', async () => {
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: signer.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    const fromPem = await parseCheckpointKeys(pem);
    expect([...fromPem.keys()]).toEqual([signer.kid]);
    expect((await verifyRecording(await recording(), undefined, fromPem)).status).toBe('intact');
    await expect(parseCheckpointKeys('hello')).rejects.toThrow('no public key');
  });

  test('the operator key from a PKCS#8 PEM signs checkpoints its public PEM verifies', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pemSigner = await checkpointSignerFromPem(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const publicKeys = await parseCheckpointKeys(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect([...publicKeys.keys()]).toEqual([pemSigner.kid]);
    const saved = signer;
    signer = pemSigner;
    try {
      expect((await verifyRecording(await recording(2), undefined, publicKeys)).status).toBe('intact');
      expect((await verifyRecording(await recording(2), undefined, keys)).status).toBe('tampered');
    } finally {
      signer = saved;
    }
  });
});
