// The embedded demo database for `gatehouse dev --demo` (what `npm start` runs): PGlite, the real
// PostgreSQL compiled to WebAssembly, served on a loopback port and seeded with customers, emails,
// card numbers and orders, so a fresh clone can show a blocked DROP and masked cards in a minute.
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface DemoDatabase {
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

const FIRST_NAMES = ['Ada', 'Alan', 'Grace', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Leslie'];
const LAST_NAMES = ['Lovelace', 'Turing', 'Hopper', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman', 'Lamport'];
// Well-known test card numbers (Luhn-valid, issued for testing by the card networks).
const TEST_CARDS = ['4111 1111 1111 1111', '5500 0000 0000 0004', '3400 0000 0000 009', '6011 0000 0000 0004', '4012 8888 8888 1881'];

export function demoSeedSql(customers = 40): string {
  const rows: string[] = [];
  for (let index = 0; index < customers; index++) {
    const first = FIRST_NAMES[index % FIRST_NAMES.length]!;
    const last = LAST_NAMES[Math.floor(index / FIRST_NAMES.length) % LAST_NAMES.length]!;
    const email = `${first}.${last}${index}@example.com`.toLowerCase();
    const card = TEST_CARDS[index % TEST_CARDS.length]!;
    rows.push(`('${first} ${last}', '${email}', '${card}', 'tier ${1 + (index % 3)}')`);
  }
  return `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL, card_number text, notes text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), total numeric(10,2) NOT NULL,
  status text NOT NULL DEFAULT 'paid', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE invoices (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders(id), status text NOT NULL DEFAULT 'open');
CREATE TABLE order_items (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders(id), sku text NOT NULL, quantity int NOT NULL);
INSERT INTO customers (name, email, card_number, notes) VALUES ${rows.join(',\n  ')};
INSERT INTO orders (customer_id, total, created_at)
  SELECT 1 + (i % ${customers}), round((10 + (i * 7919) % 490)::numeric, 2), now() - (i || ' hours')::interval FROM generate_series(1, 200) AS i;
INSERT INTO invoices (order_id, status) SELECT id, CASE WHEN id % 4 = 0 THEN 'void' ELSE 'open' END FROM orders;
INSERT INTO order_items (order_id, sku, quantity) SELECT id, 'SKU-' || (id % 17), 1 + id % 3 FROM orders;
`;
}

export async function startDemoDatabase(options: { host?: string; port?: number } = {}): Promise<DemoDatabase> {
  const db = await PGlite.create();
  await db.exec(demoSeedSql());
  const server = new PGLiteSocketServer({ db, host: options.host ?? '127.0.0.1', port: options.port ?? 0, maxConnections: 64 });
  await server.start();
  const [host, port] = server.getServerConn().split(':');
  return {
    host: host!,
    port: Number(port),
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
