import { checkedUrl, getJson, sendRequest } from './https-client.js';
import { startLoopbackServer } from './testing/loopback-servers.js';

describe('identity https client', () => {
  test('only https, or loopback http when explicitly allowed', () => {
    expect(checkedUrl('https://kubernetes.default.svc/openid/v1/jwks').protocol).toBe('https:');
    expect(checkedUrl('http://127.0.0.1:8080/keys', true).protocol).toBe('http:');
    expect(checkedUrl('http://[::1]:8080/keys', true).protocol).toBe('http:');
    for (const [url, allow] of [['http://127.0.0.1:8080/keys', false], ['http://localhost/keys', true], ['http://10.0.0.1/keys', true], ['file:///etc/passwd', true]] as const) {
      expect(() => checkedUrl(url, allow)).toThrow(expect.objectContaining({ code: 'GH_ERR_IDENTITY_INSECURE_URL' }));
    }
  });

  test('answers larger than the limit are refused', async () => {
    const server = await startLoopbackServer(() => ({ status: 200, body: { keys: 'x'.repeat(10_000) } }));
    try {
      await expect(sendRequest(new URL(server.url), { method: 'GET' }, { allowInsecureLoopback: true, maxBodyBytes: 1000 })).rejects.toThrow('larger than 1000 bytes');
      await expect(getJson(new URL(server.url), { allowInsecureLoopback: true })).resolves.toMatchObject({ keys: expect.any(String) });
    } finally {
      await server.close();
    }
  });

  test('redirects are not followed', async () => {
    const server = await startLoopbackServer(() => ({ status: 302, body: '' }));
    try {
      await expect(getJson(new URL(server.url), { allowInsecureLoopback: true })).rejects.toThrow('HTTP 302');
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
