import { isGatehouseError } from '../../api/errors.js';
import { waitFor } from './wait-for.js';

describe('waitFor', () => {
  it('returns the first value the predicate accepts', async () => {
    let calls = 0;
    const value = await waitFor(async () => ++calls, (n) => n >= 3, { timeoutMs: 2000, intervalMs: 5, what: 'three calls' });
    expect(value).toBe(3);
  });

  it('keeps polling through read errors', async () => {
    let calls = 0;
    const read = async () => {
      calls++;
      if (calls < 3) throw new Error('not yet');
      return 'ok';
    };
    await expect(waitFor(read, (text) => text === 'ok', { timeoutMs: 2000, intervalMs: 5, what: 'ok' })).resolves.toBe('ok');
  });

  it('times out with the awaited thing and the last value seen', async () => {
    const error = await waitFor(async () => ({ status: { phase: 'Pending' } }), () => false, { timeoutMs: 100, intervalMs: 10, what: 'pod payments/web-1 Running' })
      .then(() => undefined, (caught: unknown) => caught);
    expect(isGatehouseError(error, 'GH_ERR_E2E_WAIT_TIMEOUT')).toBe(true);
    expect((error as Error).message).toContain('pod payments/web-1 Running');
    expect((error as Error).message).toContain('"phase": "Pending"');
  });

  it('reports the last read error when nothing could be read', async () => {
    const error = await waitFor(async () => { throw new Error('connection refused'); }, () => true, { timeoutMs: 50, intervalMs: 10, what: 'x' })
      .then(() => undefined, (caught: unknown) => caught);
    expect((error as Error).message).toContain('error: connection refused');
  });

  it('shows a Kubernetes object status first and drops bookkeeping, so a long spec cannot hide it', async () => {
    const pod = {
      metadata: { name: 'web-1', managedFields: [{ manager: 'kubectl' }], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(5000) } },
      spec: { containers: Array.from({ length: 200 }, (_, index) => ({ name: `c${index}`, image: 'example/app:1' })) },
      status: { phase: 'Pending', reason: 'Unschedulable' },
    };
    const error = await waitFor(async () => pod, () => false, { timeoutMs: 20, intervalMs: 5, what: 'pod' }).then(() => undefined, (caught: unknown) => caught);
    const message = (error as Error).message;
    expect(message).toContain('"reason": "Unschedulable"');
    expect(message).not.toContain('managedFields');
    expect(message).not.toContain('last-applied-configuration');
    expect(message).toMatch(/… \(\d+ chars\)$/);
  });
});
