// The static strategy hands out the Secret's credential unchanged, never expiring, and reports a
// missing Secret or key with the registry codes the validator uses too.
import { isGatehouseError } from '../../api/errors.js';
import { identity, policy, resource, secret } from './credential-fixtures.js';
import { credentialRequest, toUpstreamCredential } from './credential-issuer.js';
import { secretsFromList } from './credential-secret.js';
import { StaticCredentialIssuer } from './static-issuer.js';

const billing = resource('billing-db', { credentials: { strategy: 'static', secretRef: { name: 'billing-db-app' } } });
const request = credentialRequest({
  identity: identity('reporter'),
  resource: billing,
  policies: [policy('readers', ['reporter'], ['billing-db'], [{ effect: 'allow', operations: ['read'] }])],
});

describe('StaticCredentialIssuer', () => {
  test('returns the Secret username and password with no expiry', async () => {
    const issuer = new StaticCredentialIssuer({ secrets: secretsFromList([secret('billing-db-app', { username: 'app', password: 'Static-Pass-1' })]) });
    const credential = await issuer.issue(request);
    expect(credential).toMatchObject({ strategy: 'static', id: 'secret/payments/billing-db-app', username: 'app', password: 'Static-Pass-1' });
    expect(credential.expiresAt).toBeUndefined();
    expect(credential.renewAt).toBeUndefined();
    expect(toUpstreamCredential(credential)).toEqual({ username: 'app', password: 'Static-Pass-1' });
    await expect(issuer.revoke(credential, billing)).resolves.toBeUndefined();
  });

  test('a missing Secret or key is GH_ERR_REF_UNKNOWN_SECRET / GH_ERR_REF_SECRET_KEYS, naming no value', async () => {
    const missing = await new StaticCredentialIssuer({ secrets: secretsFromList([]) }).issue(request).catch((error: unknown) => error);
    expect(isGatehouseError(missing, 'GH_ERR_REF_UNKNOWN_SECRET')).toBe(true);
    const partial = new StaticCredentialIssuer({ secrets: secretsFromList([secret('billing-db-app', { username: 'app', passwd: 'Typo-Pass-2' })]) });
    const noKey = await partial.issue(request).catch((error: unknown) => error);
    expect(isGatehouseError(noKey, 'GH_ERR_REF_SECRET_KEYS')).toBe(true);
    expect((noKey as Error).message).toContain('password');
    expect((noKey as Error).message).not.toContain('Typo-Pass-2');
  });
});
