import { GatehouseError } from '../../../api/errors.js';
import { decodeFrontendMessage, decodePassword, decodeSASLInitialResponse } from '../protocol/frontend-messages.js';
import { ALL_UPSTREAM_AUTH_METHODS, UpstreamAuthenticator, type UpstreamAuthMethod } from './upstream-authenticator.js';

const credentials = (accepted: readonly UpstreamAuthMethod[] = ALL_UPSTREAM_AUTH_METHODS) =>
  ({ user: 'app', password: 'hunter2', accepted, address: 'db:5432' });

function recorder(accepted?: readonly UpstreamAuthMethod[]) {
  const sent: Buffer[] = [];
  const authenticator = new UpstreamAuthenticator(credentials(accepted), (frame) => sent.push(frame));
  const body = (index: number) => {
    const message = decodeFrontendMessage({ type: sent[index][0], payload: sent[index].subarray(5) });
    if (message.kind !== 'PasswordMessage') throw new Error(`sent ${message.kind}`);
    return message.data;
  };
  return { authenticator, sent, body };
}

async function failure(action: () => Promise<unknown>): Promise<GatehouseError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof GatehouseError) return error;
    throw error;
  }
  throw new Error('expected a GatehouseError');
}

describe('UpstreamAuthenticator', () => {
  test('answers cleartext and MD5 requests', async () => {
    const cleartext = recorder();
    expect(await cleartext.authenticator.handle({ kind: 'AuthenticationCleartextPassword' })).toBeUndefined();
    expect(decodePassword(cleartext.body(0))).toBe('hunter2');
    expect(await cleartext.authenticator.handle({ kind: 'AuthenticationOk' })).toBe('password');

    const md5 = recorder();
    await md5.authenticator.handle({ kind: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) });
    // "md5" + md5(md5("hunter2" + "app") + salt), computed independently with Python's hashlib.
    expect(decodePassword(md5.body(0))).toBe('md56c756f9baaf93d46b93b7ca862c00383');
    expect(await md5.authenticator.handle({ kind: 'AuthenticationOk' })).toBe('md5');
  });

  test('chooses SCRAM-SHA-256 even when SCRAM-SHA-256-PLUS is offered first', async () => {
    const { authenticator, body } = recorder();
    await authenticator.handle({ kind: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    const initial = decodeSASLInitialResponse(body(0));
    expect(initial.mechanism).toBe('SCRAM-SHA-256');
    expect(initial.response?.toString()).toMatch(/^n,,n=,r=/);
  });

  test('refuses AuthenticationOk in the middle of SCRAM: the server never proved itself', async () => {
    const { authenticator } = recorder();
    await authenticator.handle({ kind: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    expect((await failure(() => authenticator.handle({ kind: 'AuthenticationOk' }))).code).toBe('GH_ERR_PG_UPSTREAM_SERVER_PROOF');
  });

  test('refuses SCRAM messages out of order and second requests', async () => {
    const early = recorder();
    expect((await failure(() => early.authenticator.handle({ kind: 'AuthenticationSASLFinal', data: Buffer.from('v=') }))).code)
      .toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
    const twice = recorder();
    await twice.authenticator.handle({ kind: 'AuthenticationCleartextPassword' });
    expect((await failure(() => twice.authenticator.handle({ kind: 'AuthenticationMD5Password', salt: Buffer.alloc(4) }))).code)
      .toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test('refuses methods not accepted for the resource, without sending the password', async () => {
    const { authenticator, sent } = recorder(['scram-sha-256']);
    const error = await failure(() => authenticator.handle({ kind: 'AuthenticationCleartextPassword' }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_AUTH_NOT_ACCEPTED');
    expect(error.details).toMatchObject({ method: 'password', accepted: 'scram-sha-256' });
    expect(sent).toHaveLength(0);
    const trust = recorder(['scram-sha-256']);
    expect((await failure(() => trust.authenticator.handle({ kind: 'AuthenticationOk' }))).code).toBe('GH_ERR_PG_UPSTREAM_AUTH_NOT_ACCEPTED');
  });

  test('names unsupported methods', async () => {
    const gss = await failure(() => recorder().authenticator.handle({ kind: 'AuthenticationOther', code: 7, data: Buffer.alloc(0) }));
    expect(gss.code).toBe('GH_ERR_PG_UPSTREAM_AUTH_UNSUPPORTED');
    expect(gss.details.method).toBe('GSSAPI');
    const sasl = await failure(() => recorder().authenticator.handle({ kind: 'AuthenticationSASL', mechanisms: ['OAUTHBEARER'] }));
    expect(sasl.details.method).toBe('SASL (OAUTHBEARER)');
  });
});
