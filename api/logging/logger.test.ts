import { Writable } from 'node:stream';
import { createLogger } from './logger.js';

function capture(): { stream: Writable; lines: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, lines: () => text };
}

describe('createLogger', () => {
  test('redacts credential fields at the top level and one level down', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream });
    logger.info({ password: 'hunter2', upstream: { user: 'app', password: 'hunter3', token: 'eyJabc' } }, 'connected');
    const line = out.lines();
    expect(line).toContain('connected');
    expect(line).toContain('"user":"app"');
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('hunter3');
    expect(line).not.toContain('eyJabc');
  });

  test('writes one JSON object per line', () => {
    const out = capture();
    createLogger({ destination: out.stream, name: 'sidecar' }).warn({ resource: 'orders-db' }, 'hello');
    const parsed = JSON.parse(out.lines().trim()) as Record<string, unknown>;
    expect(parsed).toMatchObject({ name: 'sidecar', resource: 'orders-db', msg: 'hello', level: 40 });
  });
});
