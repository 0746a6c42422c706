// require-approval statements held by the PostgreSQL sidecar, against a real PostgreSQL 15 with
// node-postgres: nothing reaches the server while held; approved runs it (masked as usual), denied
// and expired answer 42501 naming who decided, a CancelRequest ends the wait with 57014, and grant
// windows let the same fingerprint run again without asking. The ApprovalService is answered by hand.
import { connect } from 'node:net';
import pg from 'pg';
import { statementFingerprint } from '../../api/approvals/approval-service.js';
import { rejection, startSidecarFixture, type SidecarFixture } from '../postgres/testing/sidecar-fixture.js';
import { StatementApprovals } from './statement-approvals.js';
import { ScriptedApprovalService } from './testing/scripted-approval-service.js';

const RULES = (approval: string) => `  rules:
    - {name: app-access, effect: allow, operations: [read, transaction, session]}
    - {name: changes, effect: require-approval, operations: [write, delete], message: "changes need a DBA", approval: ${approval}}
  masking:
    - {detectors: [credit-card], strategy: redact}
`;
const PLAIN = '{approvers: {groups: [dba]}, timeout: 1500ms}';

let f: SidecarFixture;
let service: ScriptedApprovalService;

beforeAll(async () => {
  service = new ScriptedApprovalService();
  f = await startSidecarFixture({
    policyRules: RULES(PLAIN),
    sidecar: { approvals: new StatementApprovals({ service, pod: 'payments/app-7f9', expiryGraceMs: 100 }) },
  });
}, 60_000);

afterAll(async () => {
  await f?.stop();
});

/** What the client sees of a held query: nothing, for this long. */
async function stillWaiting(promise: Promise<unknown>, ms = 200): Promise<boolean> {
  const marker = Symbol('waiting');
  const result = await Promise.race([promise.then(() => 'done', () => 'failed'), new Promise((resolve) => setTimeout(() => resolve(marker), ms))]);
  return result === marker;
}

/** A CancelRequest on a new connection, as psql sends on Ctrl-C. */
async function sendCancel(client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  await new Promise<void>((resolve, reject) => {
    const socket = connect(f.port, '127.0.0.1', () => socket.end(packet));
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

describe('a held statement', () => {
  it('reaches the server only once approved, and its result is masked as usual', async () => {
    await f.withClient(async (client) => {
      const running = client.query("UPDATE customers SET notes = 'checked' WHERE id = 2 RETURNING name, notes, card_number");
      const asked = await service.next();
      expect(asked.request).toEqual({
        identity: 'app',
        resource: 'db',
        policy: 'app-policy',
        rule: 'changes',
        pod: 'payments/app-7f9',
        statement: "UPDATE customers SET notes = 'checked' WHERE id = 2 RETURNING name, notes, card_number",
        fingerprint: statementFingerprint("UPDATE customers SET notes = 'checked' WHERE id = 2 RETURNING name, notes, card_number"),
        reason: expect.stringContaining('changes need a DBA'),
      });
      expect(asked.timeoutMs).toBe(1500);
      expect(await stillWaiting(running)).toBe(true);
      expect(await f.adminPsql('SELECT notes FROM customers WHERE id = 2')).toBe('paid with card 4012888888881881 last time');
      asked.answer({ outcome: 'approved', decidedBy: ['alice'] });
      const result = await running;
      expect(result.rows).toEqual([{ name: 'Alan Turing', notes: 'checked', card_number: '[REDACTED:credit-card]' }]);
      expect(await f.adminPsql('SELECT notes FROM customers WHERE id = 2')).toBe('checked');
    });
  });

  it('is refused with 42501 naming who denied it and why; the connection stays usable', async () => {
    await f.withClient(async (client) => {
      const running = client.query('DELETE FROM orders WHERE id = 7');
      const asked = await service.next();
      asked.answer({ outcome: 'denied', decidedBy: ['bob'], reason: 'not during the freeze', request: 'AccessRequest payments/app-x1' });
      const error = await rejection(running);
      expect(error.code).toBe('42501');
      expect(error.message).toBe('gatehouse: approval denied by bob: not during the freeze (AccessRequest payments/app-x1)');
      expect(error.detail).toBe('Denied by Gatehouse policy: rule app-policy/changes (require-approval).');
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 7')).toBe('1');
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
  });

  it('expires at the rule timeout even when nobody answers, and the request is withdrawn', async () => {
    await f.withClient(async (client) => {
      const started = Date.now();
      const running = client.query('DELETE FROM orders WHERE id = 8');
      const asked = await service.next();
      const error = await rejection(running);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1550);
      expect(error.code).toBe('42501');
      expect(error.message).toMatch(/^gatehouse: approval expired: no decision within 1500ms/);
      expect(asked.signal.aborted).toBe(true);
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 8')).toBe('1');
      expect((await client.query('SELECT 2 AS ok')).rows).toEqual([{ ok: 2 }]);
    });
  });

  it('ends with 57014 when the client cancels, withdrawing the request; the connection stays usable', async () => {
    await f.withClient(async (client) => {
      const running = client.query('DELETE FROM orders WHERE id = 9');
      const asked = await service.next();
      await sendCancel(client);
      const error = await rejection(running);
      expect(error.code).toBe('57014');
      expect(error.message).toMatch(/canceling statement due to user request/);
      expect(asked.signal.aborted).toBe(true);
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 9')).toBe('1');
      expect((await client.query('SELECT 3 AS ok')).rows).toEqual([{ ok: 3 }]);
    });
  });

  it('is held at Bind in the extended protocol, with its parameters shown to the approver', async () => {
    await f.withClient(async (client) => {
      const running = client.query('DELETE FROM orders WHERE id = $1', [10]);
      const asked = await service.next();
      expect(asked.request.statement).toBe('DELETE FROM orders WHERE id = $1\n-- parameters: ["10"]');
      expect(asked.request.fingerprint).toBe(statementFingerprint('DELETE FROM orders WHERE id = $1'));
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 10')).toBe('1');
      asked.answer({ outcome: 'approved', decidedBy: ['alice', 'carol'] });
      expect((await running).rowCount).toBe(1);
      // The prepared statement stays usable: a denied execution of it fails only that execution.
      const again = client.query('DELETE FROM orders WHERE id = $1', [11]);
      (await service.next()).answer({ outcome: 'denied', decidedBy: ['bob'] });
      expect((await rejection(again)).code).toBe('42501');
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id IN (10, 11)')).toBe('1');
      expect((await client.query('SELECT 4 AS ok')).rows).toEqual([{ ok: 4 }]);
    });
  });

  it('shows approvers the statement masked like a recording, fingerprinted by its real text', async () => {
    await f.withClient(async (client) => {
      const statement = "UPDATE customers SET notes = 'flagged' WHERE card_number = '4111 1111 1111 1111'";
      const running = client.query(statement);
      const asked = await service.next();
      expect(asked.request.statement).toBe("UPDATE customers SET notes = 'flagged' WHERE card_number = '[REDACTED:credit-card]'");
      expect(asked.request.fingerprint).toBe(statementFingerprint(statement));
      asked.answer({ outcome: 'denied', decidedBy: ['bob'] });
      expect((await rejection(running)).code).toBe('42501');
    });
  });

  it('keeps the client pipeline in order: what was sent after it runs after it', async () => {
    await f.withClient(async (client) => {
      // node-postgres queues; a raw pipeline is the same bytes arriving behind the held query.
      const held = client.query('DELETE FROM orders WHERE id = 12');
      const after = client.query('SELECT count(*)::int AS n FROM orders WHERE id = 12');
      const asked = await service.next();
      expect(await stillWaiting(after)).toBe(true);
      asked.answer({ outcome: 'approved', decidedBy: ['alice'] });
      await held;
      expect((await after).rows).toEqual([{ n: 0 }]);
    });
  });
});

describe('grant windows', () => {
  afterEach(async () => {
    await f.reload(RULES(PLAIN));
  });

  it('let the same identity run the same fingerprint again without asking while the window is open', async () => {
    await f.reload(RULES('{approvers: {groups: [dba]}, timeout: 5s, grantWindow: 1m}'));
    await f.withClient(async (client) => {
      const first = client.query('DELETE FROM orders WHERE id = 20');
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      expect((await first).rowCount).toBe(1);
      const asked = service.asked.length;
      // Another number is the same statement shape, so the same fingerprint.
      expect((await client.query('DELETE FROM orders WHERE id = 21')).rowCount).toBe(1);
      expect((await client.query('DELETE FROM orders WHERE id = 22')).rowCount).toBe(1);
      expect(service.asked.length).toBe(asked);
      // A different statement still asks.
      const other = client.query('DELETE FROM orders WHERE total > 1000000');
      const otherAsked = await service.next();
      expect(otherAsked.request.statement).toBe('DELETE FROM orders WHERE total > 1000000');
      otherAsked.answer({ outcome: 'denied', decidedBy: ['bob'] });
      expect((await rejection(other)).code).toBe('42501');
    });
  });

  it('covers one more run when single-use, then asks again', async () => {
    await f.reload(RULES('{approvers: {groups: [dba]}, timeout: 5s, grantWindow: 1m, singleUse: true}'));
    await f.withClient(async (client) => {
      const first = client.query("UPDATE orders SET total = 1 WHERE id = 30");
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      await first;
      const asked = service.asked.length;
      expect((await client.query('UPDATE orders SET total = 1 WHERE id = 30')).rowCount).toBe(1);
      expect(service.asked.length).toBe(asked);
      const third = client.query('UPDATE orders SET total = 1 WHERE id = 30');
      const again = await service.next();
      expect(again.request.fingerprint).toBe(statementFingerprint('UPDATE orders SET total = 1 WHERE id = 30'));
      again.answer({ outcome: 'approved', decidedBy: ['alice'] });
      expect((await third).rowCount).toBe(1);
    });
  });

  it('do not exist without grantWindow, and a rule that loses its window honours no earlier grant', async () => {
    await f.reload(RULES('{approvers: {groups: [dba]}, timeout: 5s, grantWindow: 1m}'));
    await f.withClient(async (client) => {
      const first = client.query('UPDATE orders SET customer_id = 3 WHERE id = 32');
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      await first;
    });
    await f.reload(RULES(PLAIN));
    await f.withClient(async (client) => {
      const revoked = client.query('UPDATE orders SET customer_id = 3 WHERE id = 32');
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      await revoked;
      const first = client.query('UPDATE orders SET total = 2 WHERE id = 31');
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      await first;
      const second = client.query('UPDATE orders SET total = 2 WHERE id = 31');
      (await service.next()).answer({ outcome: 'approved', decidedBy: ['alice'] });
      expect((await second).rowCount).toBe(1);
    });
  });
});
