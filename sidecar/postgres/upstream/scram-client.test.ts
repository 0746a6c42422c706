import { GatehouseError } from '../../../api/errors.js';
import { ScramClient } from './scram-client.js';

// RFC 7677 section 3.
const VECTOR = {
  username: 'user',
  password: 'pencil',
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function vectorClient(): ScramClient {
  return new ScramClient({ password: VECTOR.password, username: VECTOR.username, nonce: VECTOR.nonce, server: 'db:5432' });
}

async function rejection(action: () => unknown): Promise<GatehouseError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof GatehouseError) return error;
    throw error;
  }
  throw new Error('expected a GatehouseError');
}

describe('ScramClient', () => {
  test('reproduces the RFC 7677 exchange and accepts the genuine server signature', async () => {
    const client = vectorClient();
    expect(client.clientFirstMessage).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(await client.answerServerFirst(VECTOR.serverFirst)).toBe(VECTOR.clientFinal);
    expect(() => client.verifyServerFinal(VECTOR.serverFinal)).not.toThrow();
  });

  test('rejects a server signature that does not prove knowledge of the password', async () => {
    const client = vectorClient();
    await client.answerServerFirst(VECTOR.serverFirst);
    const error = await rejection(() => client.verifyServerFinal('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_SERVER_PROOF');
    expect(error.message).not.toContain(VECTOR.password);
  });

  test('rejects a server-final without verifier, with an error, or replayed', async () => {
    const client = vectorClient();
    await client.answerServerFirst(VECTOR.serverFirst);
    expect((await rejection(() => client.verifyServerFinal('x=1'))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
    const erroring = vectorClient();
    await erroring.answerServerFirst(VECTOR.serverFirst);
    expect((await rejection(() => erroring.verifyServerFinal('e=invalid-proof'))).details.detail).toMatch(/invalid-proof/);
    const replayed = vectorClient();
    await replayed.answerServerFirst(VECTOR.serverFirst);
    replayed.verifyServerFinal(VECTOR.serverFinal);
    expect((await rejection(() => replayed.verifyServerFinal(VECTOR.serverFinal))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test('refuses a server-final before any server-first', async () => {
    expect((await rejection(() => vectorClient().verifyServerFinal(VECTOR.serverFinal))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test.each([
    ['a nonce that does not extend ours', 'r=somebodyElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
    ['a nonce equal to ours (no server part)', 'r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
    ['a salt that is not base64', 'r=rOprNGfwEbeRWgbNEkqOx,s=***,i=4096'],
    ['a missing salt', 'r=rOprNGfwEbeRWgbNEkqOx,i=4096'],
    ['zero iterations', 'r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0'],
    ['iterations above the cap (CPU exhaustion)', 'r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2147483647'],
    ['a mandatory extension', 'm=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
  ])('refuses a server-first with %s', async (_name, serverFirst) => {
    expect((await rejection(() => vectorClient().answerServerFirst(serverFirst))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test('answers only one server-first', async () => {
    const client = vectorClient();
    await client.answerServerFirst(VECTOR.serverFirst);
    expect((await rejection(() => client.answerServerFirst(VECTOR.serverFirst))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test('sends an empty user name and a fresh random nonce by default, as libpq does', () => {
    const first = new ScramClient({ password: 'x', server: 'db:5432' }).clientFirstMessage;
    const second = new ScramClient({ password: 'x', server: 'db:5432' }).clientFirstMessage;
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/=]{24}$/);
    expect(first).not.toBe(second);
  });
});
