import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { isGatehouseError } from '../../api/errors.js';
import type { MaskingRuleT } from '../../api/kinds/kinds.js';
import { SAMPLE_JWT } from './detector-fixtures.js';
import { createMasker, type ColumnPlan, type Masker } from './masker.js';
import { PG_TYPE } from './postgres-value-classes.js';

const HASH_KEY = Buffer.from('per-deployment-masking-key-0001');
const ALL_DETECTORS: MaskingRuleT = {
  detectors: ['credit-card', 'email', 'iban', 'us-ssn', 'jwt', 'cloud-access-key', 'private-key'],
};

function expectedHash(canonical: string): string {
  return `[HASH:${createHmac('sha256', HASH_KEY).update(canonical).digest('hex').slice(0, 20)}]`;
}

function masker(rules: MaskingRuleT[]): Masker {
  return createMasker(rules, { hashKey: HASH_KEY });
}

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('createMasker', () => {
  test('a hash rule needs a hash key', () => {
    const error = thrownBy(() => createMasker([{ columns: ['email'], strategy: 'hash' }]));
    expect(isGatehouseError(error, 'GH_ERR_MASKING_HASH_KEY')).toBe(true);
    expect(() => createMasker([{ columns: ['email'], strategy: 'redact' }])).not.toThrow();
  });

  test('a short key is refused even before a hash rule needs it', () => {
    expect(isGatehouseError(thrownBy(() => createMasker([], { hashKey: Buffer.from('short') })), 'GH_ERR_MASKING_HASH_KEY')).toBe(true);
  });
});

describe('planning (the fast path)', () => {
  test('no rules: inactive, nothing is inspected', () => {
    const none = masker([]);
    expect(none.active).toBe(false);
    expect(none.planResultSet([{ name: 'email' }, { name: 'card' }]).inspect).toBe(false);
  });

  test('only column rules: a result set without those columns is not inspected', () => {
    const byName = masker([{ columns: ['customers.card_number', 'email'] }]);
    expect(byName.active).toBe(true);
    const plan = byName.planResultSet([
      { name: 'id', table: { name: 'orders' }, typeOid: PG_TYPE.int4 },
      { name: 'card_number', table: { name: 'orders' } },
    ]);
    expect(plan.inspect).toBe(false);
    expect(plan.columns.map((column) => column.inspect)).toEqual([false, false]);
    const touched = byName.planResultSet([{ name: 'id' }, { name: 'EMAIL' }]);
    expect(touched.inspect).toBe(true);
    expect(touched.columns.map((column) => column.inspect)).toEqual([false, true]);
  });

  test('detector rules inspect every column that could hold a match, and skip types that cannot', () => {
    const detecting = masker([ALL_DETECTORS]);
    const plan = detecting.planResultSet([
      { name: 'id', typeOid: PG_TYPE.int4 },
      { name: 'active', typeOid: PG_TYPE.bool },
      { name: 'created', typeOid: PG_TYPE.timestamptz },
      { name: 'uid', typeOid: PG_TYPE.uuid },
      { name: 'notes', typeOid: PG_TYPE.text },
      { name: 'amount', typeOid: PG_TYPE.int8 },
      { name: 'untyped' },
    ]);
    expect(plan.columns.map((column) => column.inspect)).toEqual([false, false, false, false, true, true, true]);
  });

  test('a column rule always inspects, whatever the type', () => {
    expect(masker([{ columns: ['id'] }]).planColumn({ name: 'id', typeOid: PG_TYPE.int4 }).inspect).toBe(true);
  });

  test('with a column strategy, only stronger detectors are kept, as upgrades', () => {
    const plan = masker([
      { columns: ['notes'], strategy: 'hash' },
      { detectors: ['email'], strategy: 'partial' },
      { detectors: ['credit-card'], strategy: 'redact' },
    ]).planColumn({ name: 'notes' });
    expect(plan).toEqual({ inspect: true, strategy: 'hash', detectors: [{ detector: 'credit-card', strategy: 'redact' }] });
  });
});

describe('maskValue', () => {
  // Column rules only, so that no detector rule upgrades their strategies (tested below).
  const m = masker([
    { columns: ['email'], strategy: 'partial' },
    { columns: ['customers.card_number'], strategy: 'partial' },
    { columns: ['ssn', 'api_key'] },
    { columns: ['customer_ref', 'contact'], strategy: 'hash' },
  ]);
  const detecting = masker([ALL_DETECTORS]);
  const mask = (column: string, value: string) => {
    const masking = column === 'notes' ? detecting : m;
    return masking.maskValue(masking.planColumn({ name: column }), value);
  };

  test('leaves clean values alone', () => {
    expect(mask('notes', 'nothing to see here, order 1234')).toEqual({ value: 'nothing to see here, order 1234', masked: 0 });
  });

  test('masks only the sensitive spans of free text', () => {
    expect(mask('notes', 'call me at jane@example.com or pay 4111 1111 1111 1111, ssn 123-45-6789')).toEqual({
      value: 'call me at [REDACTED:email] or pay [REDACTED:credit-card], ssn [REDACTED:us-ssn]',
      masked: 3,
    });
    expect(mask('notes', `auth ${SAMPLE_JWT}`).value).toBe('auth [REDACTED:jwt]');
  });

  test('redact by column replaces the whole value', () => {
    expect(mask('ssn', '123-45-6789')).toEqual({ value: '[REDACTED]', masked: 1 });
    expect(mask('api_key', '')).toEqual({ value: '[REDACTED]', masked: 1 });
  });

  test('partial by column uses the format of what the value is', () => {
    expect(mask('email', 'jane.doe@example.com').value).toBe('j***@example.com');
    expect(mask('card_number', '4111 1111 1111 1111').value).toBe('**** **** **** 1111');
    expect(mask('email', 'not an address at all').value).toBe('**** all');
  });

  test('hash by column is stable and canonical, so it joins with detector hashes of the same value', () => {
    expect(mask('customer_ref', 'cust-0001')).toEqual({ value: expectedHash('cust-0001'), masked: 1 });
    expect(mask('customer_ref', 'cust-0001').value).toBe(mask('customer_ref', 'cust-0001').value);
    expect(mask('customer_ref', 'cust-0002').value).not.toBe(mask('customer_ref', 'cust-0001').value);
    expect(mask('contact', 'Jane@Example.com').value).toBe(expectedHash('jane@example.com'));
    const hashing = masker([{ detectors: ['credit-card'], strategy: 'hash' }]);
    expect(hashing.maskValue(hashing.planColumn({ name: 'notes' }), 'card 4111 1111 1111 1111').value).toBe(
      `card ${expectedHash('4111111111111111')}`,
    );
  });

  test('a stronger detector hit upgrades a weaker column strategy for that value', () => {
    const upgrading = masker([{ columns: ['notes'], strategy: 'partial' }, { detectors: ['credit-card'] }]);
    const plan = upgrading.planColumn({ name: 'notes' });
    expect(upgrading.maskValue(plan, 'card 4111111111111111').value).toBe('[REDACTED]');
    expect(upgrading.maskValue(plan, 'no card here, just text').value).toBe('****text');
  });

  test('overlapping hits merge, the strongest strategy winning', () => {
    const overlapping = masker([
      { detectors: ['email'], strategy: 'partial' },
      { detectors: ['cloud-access-key'], strategy: 'redact' },
    ]);
    // The Slack token's dash-joined body runs into the address; both spans merge into one.
    const plan = overlapping.planColumn({ name: 'notes' });
    const result = overlapping.maskValue(plan, 'xoxb-1234567890-abc@example.com');
    expect(result.value).toBe('[REDACTED:cloud-access-key]');
    expect(result.masked).toBe(1);
  });

  test('a plan that inspects nothing returns the value untouched', () => {
    const plan: ColumnPlan = m.planColumn({ name: 'id', typeOid: PG_TYPE.int4 });
    expect(m.maskValue(plan, '4111111111111111')).toEqual({ value: '4111111111111111', masked: 0 });
  });
});

describe('maskCell', () => {
  const detecting = masker([ALL_DETECTORS]);
  const byColumn = masker([{ columns: ['secret'] }]);
  const notes = detecting.planColumn({ name: 'notes' });
  const secret = byColumn.planColumn({ name: 'secret' });
  const text = (value: string) => Buffer.from(value, 'utf8');

  test('NULL stays NULL; untouched cells are the same buffer', () => {
    expect(detecting.maskCell(notes, null, 'text', PG_TYPE.text)).toEqual({ cell: null, masked: 0 });
    const clean = text('héllo wörld');
    expect(detecting.maskCell(notes, clean, 'text', PG_TYPE.text).cell).toBe(clean);
  });

  test('text: spans are rewritten and every other byte is kept, multi-byte characters included', () => {
    const result = detecting.maskCell(notes, text('Zoë pays 4111111111111111 — ok'), 'text', PG_TYPE.text);
    expect(result.cell?.toString('utf8')).toBe('Zoë pays [REDACTED:credit-card] — ok');
    expect(result.masked).toBe(1);
  });

  test('text-like types in binary format are their text bytes', () => {
    for (const type of [PG_TYPE.text, PG_TYPE.varchar, PG_TYPE.bpchar, PG_TYPE.name]) {
      expect(detecting.maskCell(notes, text('x@example.com'), 'binary', type).cell?.toString()).toBe('[REDACTED:email]');
      expect(byColumn.maskCell(secret, text('hunter2'), 'binary', type).cell?.toString()).toBe('[REDACTED]');
    }
  });

  test('json: a hit inside a string stays in the string, a bare number becomes a string', () => {
    const result = detecting.maskCell(notes, text('{"pan": 4111111111111111, "note": "mail a@b.io"}'), 'text', PG_TYPE.json);
    const masked = result.cell!.toString();
    expect(JSON.parse(masked)).toEqual({ pan: '[REDACTED:credit-card]', note: 'mail [REDACTED:email]' });
  });

  test('jsonb binary keeps its version byte', () => {
    const cell = Buffer.concat([Buffer.of(1), text('{"pan": "4111111111111111"}')]);
    const result = detecting.maskCell(notes, cell, 'binary', PG_TYPE.jsonb);
    expect(result.cell![0]).toBe(1);
    expect(JSON.parse(result.cell!.subarray(1).toString())).toEqual({ pan: '[REDACTED:credit-card]' });
  });

  test('json masked whole by column stays valid JSON (a string)', () => {
    const jsonColumn = byColumn.maskCell(secret, text('{"a": 1}'), 'text', PG_TYPE.jsonb);
    expect(JSON.parse(jsonColumn.cell!.toString())).toBe('[REDACTED]');
    const jsonbBinary = byColumn.maskCell(secret, Buffer.concat([Buffer.of(1), text('[1]')]), 'binary', PG_TYPE.jsonb);
    expect(jsonbBinary.cell![0]).toBe(1);
    expect(JSON.parse(jsonbBinary.cell!.subarray(1).toString())).toBe('[REDACTED]');
  });

  test('json whose structure a span would break is masked whole', () => {
    // A private key spanning from inside one string to outside it.
    const value = '{"k": "-----BEGIN PRIVATE KEY-----", "x": 1, "y": "-----END PRIVATE KEY-----" }';
    const broken = '{"k": "-----BEGIN PRIVATE KEY-----", "x": 1} -----END PRIVATE KEY-----';
    expect(JSON.parse(detecting.maskCell(notes, text(value), 'text', PG_TYPE.json).cell!.toString())).toEqual({
      k: '[REDACTED:private-key]',
    });
    expect(JSON.parse(detecting.maskCell(notes, text(broken), 'text', PG_TYPE.json).cell!.toString())).toBe('[REDACTED]');
  });

  test('unreadable jsonb versions are never rewritten: column rules null them, detector hits too', () => {
    const future = Buffer.concat([Buffer.of(2), text('"4111111111111111"')]);
    expect(byColumn.maskCell(secret, future, 'binary', PG_TYPE.jsonb)).toEqual({ cell: null, masked: 1 });
    expect(detecting.maskCell(notes, future, 'binary', PG_TYPE.jsonb)).toEqual({ cell: null, masked: 1 });
  });

  test('text arrays: markers are spliced and the literal stays an array', () => {
    const result = detecting.maskCell(notes, text('{a,"card 4111 1111 1111 1111",4111111111111111}'), 'text', PG_TYPE.textArray);
    expect(result.cell!.toString()).toBe('{a,"card [REDACTED:credit-card]",[REDACTED:credit-card]}');
  });

  test('column rules on types that cannot hold the replacement give NULL, in both formats', () => {
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(4111111111111111n);
    expect(byColumn.maskCell(secret, int8, 'binary', PG_TYPE.int8)).toEqual({ cell: null, masked: 1 });
    expect(byColumn.maskCell(secret, text('4111111111111111'), 'text', PG_TYPE.int8)).toEqual({ cell: null, masked: 1 });
    expect(byColumn.maskCell(secret, text('t'), 'text', PG_TYPE.bool)).toEqual({ cell: null, masked: 1 });
    expect(byColumn.maskCell(secret, text('{a,b}'), 'text', PG_TYPE.textArray)).toEqual({ cell: null, masked: 1 });
    expect(byColumn.maskCell(secret, Buffer.of(1, 2, 3), 'binary', PG_TYPE.bytea)).toEqual({ cell: null, masked: 1 });
    expect(byColumn.maskCell(secret, Buffer.of(0, 0, 0, 1), 'binary', 99999)).toEqual({ cell: null, masked: 1 });
  });

  test('user-defined types in text format (citext, enums) take the replacement as text', () => {
    expect(byColumn.maskCell(secret, text('Jane'), 'text', 99999).cell?.toString()).toBe('[REDACTED]');
    expect(detecting.maskCell(notes, text('Jane <j@x.io>'), 'text', 99999).cell?.toString()).toBe('Jane <[REDACTED:email]>');
  });

  test('numbers holding a card are decoded (binary) or read (text) and nulled on a hit', () => {
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(4111111111111111n);
    expect(detecting.maskCell(notes, int8, 'binary', PG_TYPE.int8)).toEqual({ cell: null, masked: 1 });
    expect(detecting.maskCell(notes, text('4111111111111111'), 'text', PG_TYPE.int8)).toEqual({ cell: null, masked: 1 });
    expect(detecting.maskCell(notes, text('4111111111111111.00'), 'text', PG_TYPE.numeric)).toEqual({ cell: null, masked: 1 });
    const numeric = Buffer.from('0004000300000000100f045704570457', 'hex'); // numeric_send(4111111111111111)
    expect(detecting.maskCell(notes, numeric, 'binary', PG_TYPE.numeric)).toEqual({ cell: null, masked: 1 });
    const float8 = Buffer.alloc(8);
    float8.writeDoubleBE(4111111111111111);
    expect(detecting.maskCell(notes, float8, 'binary', PG_TYPE.float8)).toEqual({ cell: null, masked: 1 });
    const harmless = Buffer.alloc(8);
    harmless.writeBigInt64BE(1234567890123456n);
    expect(detecting.maskCell(notes, harmless, 'binary', PG_TYPE.int8).cell).toBe(harmless);
  });

  test('binary arrays are scanned element by element and nulled on a hit', () => {
    // array_send(ARRAY[1, 4111111111111111]::int8[])
    const int8Array = Buffer.from('000000010000000000000014000000020000000100000008000000000000000100000008000e9b08a568f1c7', 'hex');
    expect(detecting.maskCell(notes, int8Array, 'binary', 1016)).toEqual({ cell: null, masked: 1 });
    // array_send(ARRAY['a', NULL, 'card 4111 1111 1111 1111']::text[])
    const textArray = Buffer.from(
      '00000001000000010000001900000003000000010000000161ffffffff00000018636172642034313131203131313120313131312031313131',
      'hex',
    );
    expect(detecting.maskCell(notes, textArray, 'binary', PG_TYPE.textArray)).toEqual({ cell: null, masked: 1 });
    const clean = Buffer.from('0000000100000000000000140000000100000001000000080000000000000001', 'hex');
    expect(detecting.maskCell(notes, clean, 'binary', 1016).cell).toBe(clean);
  });

  test('bytea is scanned for what it encodes, in hex text format and raw binary', () => {
    const bytes = Buffer.from('token AKIAIOSFODNN7EXAMPLE');
    expect(detecting.maskCell(notes, text(`\\x${bytes.toString('hex')}`), 'text', PG_TYPE.bytea)).toEqual({ cell: null, masked: 1 });
    expect(detecting.maskCell(notes, bytes, 'binary', PG_TYPE.bytea)).toEqual({ cell: null, masked: 1 });
  });

  test('other binary types are scanned byte-wise as Latin-1', () => {
    const record = Buffer.concat([Buffer.from('00000001000000190000000f', 'hex'), text('x a@example.com')]);
    expect(detecting.maskCell(notes, record, 'binary', 2249 /* record */)).toEqual({ cell: null, masked: 1 });
  });

  test('inert types are passed through even if a plan asks', () => {
    const int4 = Buffer.of(0, 0, 0, 42);
    const plan = detecting.planColumn({ name: 'x' });
    expect(detecting.maskCell(plan, int4, 'binary', PG_TYPE.int4).cell).toBe(int4);
  });

  test('hashing a cell hashes its bytes, equal to hashing the same string', () => {
    const hashing = masker([{ columns: ['name'], strategy: 'hash' }]);
    const plan = hashing.planColumn({ name: 'name' });
    const fromCell = hashing.maskCell(plan, text('Zoë Ångström'), 'text', PG_TYPE.text).cell!.toString();
    expect(fromCell).toBe(hashing.maskValue(plan, 'Zoë Ångström').value);
    expect(fromCell).toBe(expectedHash('Zoë Ångström'));
  });
});

describe('planCell', () => {
  const hashKey = Buffer.from('plan-cell-test-hash-key-0123456789');
  const types = [...Object.values(PG_TYPE), 0, 99999, 1016, 3807];
  const rules: MaskingRuleT[][] = [
    [{ columns: ['secret'], strategy: 'redact' }],
    [{ columns: ['secret'], strategy: 'hash' }],
    [{ columns: ['secret'], strategy: 'partial' }, { detectors: ['credit-card'], strategy: 'redact' }],
    [{ detectors: ['credit-card', 'email'], strategy: 'partial' }],
  ];
  const cells = fc.option(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
      fc.constantFrom('4111111111111111', 'a@example.com', '{"a": "4111 1111 1111 1111"}', '{a,b}', '').map((text) => Buffer.from(text)),
      fc.uint8Array({ maxLength: 30 }).map((bytes) => Buffer.concat([Buffer.of(1), Buffer.from(bytes)])),
    ),
    { nil: null },
  );

  test('masks every cell as maskCell does, and a fixed outcome is what maskCell gives any value', () => {
    fc.assert(
      fc.property(fc.constantFrom(...rules), fc.constantFrom(...types), fc.constantFrom('text' as const, 'binary' as const), cells, (ruleSet, typeOid, format, cell) => {
        const engine = createMasker(ruleSet, { hashKey });
        const plan = engine.planColumn({ name: 'secret', typeOid });
        const planned = engine.planCell(plan, format, typeOid);
        const expected = engine.maskCell(plan, cell, format, typeOid);
        if (planned === undefined) {
          expect(plan.inspect).toBe(false);
          return;
        }
        expect(planned.mask(cell)).toEqual(expected);
        if (planned.fixed !== undefined && cell !== null) expect(planned.fixed).toEqual(expected);
      }),
    );
  });

  test('a column redacted whole needs no look at its values', () => {
    const engine = masker([{ columns: ['secret'] }]);
    const plan = engine.planColumn({ name: 'secret' });
    expect(engine.planCell(plan, 'text', PG_TYPE.text)?.fixed?.cell?.toString()).toBe('[REDACTED]');
    expect(engine.planCell(plan, 'text', PG_TYPE.int8)?.fixed).toEqual({ cell: null, masked: 1 });
    expect(engine.planCell(plan, 'binary', PG_TYPE.jsonb)?.fixed).toBeUndefined();
    expect(engine.planCell(engine.planColumn({ name: 'other' }), 'text', PG_TYPE.text)).toBeUndefined();
  });
});
