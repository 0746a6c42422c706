import { startPostgres, type PostgresServer } from './postgres-server.js';

describe('startPostgres', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres({ tls: true });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  test('serves each password method on 127.0.0.1', async () => {
    expect(await server.psql('SELECT 1')).toBe('1');
    expect(await server.psql('SELECT current_user', { user: server.md5User })).toBe('md5_user');
    expect(await server.psql('SELECT current_user', { user: server.cleartextUser })).toBe('plain_user');
    expect(await server.psql("SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'md5_user'")).toBe('t');
    expect(await server.psql('SHOW ssl')).toBe('on');
    expect(server.caPem).toContain('BEGIN CERTIFICATE');
  });
});
