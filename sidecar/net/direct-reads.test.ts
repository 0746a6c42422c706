import { randomBytes } from 'node:crypto';
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { adoptAccepted, connectDirect, readsDirectly, setChunkHandler } from './direct-reads.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function once(socket: Socket, event: string): Promise<void> {
  return new Promise((resolve) => socket.once(event, () => resolve()));
}

/** Sends `payload` in pieces of random sizes, as a peer writing messages would. */
async function sendInPieces(socket: Socket, payload: Buffer): Promise<void> {
  let offset = 0;
  while (offset < payload.length) {
    const size = 1 + Math.floor(Math.random() * 40_000);
    const piece = payload.subarray(offset, offset + size);
    offset += piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
  }
  socket.end();
}

describe('connectDirect', () => {
  let server: Server;
  let port: number;
  let payload: Buffer;

  beforeAll(async () => {
    payload = randomBytes(3 * 1024 * 1024);
    server = createServer((socket) => void sendInPieces(socket, payload));
    port = await listen(server);
  });
  afterAll(() => closeServer(server));

  test('chunks kept by the handler are never written over by later reads', async () => {
    const socket = connectDirect({ host: '127.0.0.1', port });
    expect(readsDirectly(socket)).toBe(true);
    const kept: Buffer[] = [];
    setChunkHandler(socket, (chunk) => kept.push(chunk));
    await once(socket, 'end');
    expect(kept.length).toBeGreaterThan(1);
    expect(Buffer.concat(kept).equals(payload)).toBe(true);
  });

  test('without a handler chunks arrive as data events; pause stops them until resume', async () => {
    const socket = connectDirect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    let whilePaused = 0;
    let paused = false;
    socket.on('data', (chunk: Buffer) => {
      if (paused) whilePaused++;
      received.push(chunk);
      if (received.length === 1) {
        paused = true;
        socket.pause();
        setTimeout(() => {
          paused = false;
          socket.resume();
        }, 50);
      }
    });
    await once(socket, 'close');
    expect(whilePaused).toBe(0);
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  test('a later handler replaces the earlier one', async () => {
    const socket = connectDirect({ host: '127.0.0.1', port });
    const first: Buffer[] = [];
    const second: Buffer[] = [];
    setChunkHandler(socket, (chunk) => {
      first.push(chunk);
      setChunkHandler(socket, (next) => second.push(next));
    });
    await once(socket, 'end');
    expect(first).toHaveLength(1);
    expect(Buffer.concat([...first, ...second]).equals(payload)).toBe(true);
  });
});

describe('adoptAccepted', () => {
  test('re-wraps a paused accepted connection with direct reads; nothing is lost and the server still closes', async () => {
    const payload = randomBytes(2 * 1024 * 1024);
    const adopted: Socket[] = [];
    const kept: Buffer[] = [];
    const received = new Promise<void>((resolve) => {
      const server = createServer({ pauseOnConnect: true }, (accepted) => {
        const socket = adoptAccepted(accepted);
        adopted.push(socket);
        setChunkHandler(socket, (chunk) => kept.push(chunk));
        socket.on('end', () => {
          socket.end('done');
          resolve();
        });
        socket.resume();
      });
      void listen(server).then(async (port) => {
        const client = new Socket();
        client.connect(port, '127.0.0.1');
        await once(client, 'connect');
        const answer: Buffer[] = [];
        client.on('data', (chunk: Buffer) => answer.push(chunk));
        await sendInPieces(client, payload);
        await once(client, 'close');
        expect(Buffer.concat(answer).toString()).toBe('done');
        await closeServer(server);
      });
    });
    await received;
    // On the Node this runs on, adoption must work: if an upgrade changes what it relies on, this fails.
    expect(readsDirectly(adopted[0]!)).toBe(true);
    expect(adopted[0]!.remoteAddress).toBe('127.0.0.1');
    expect(Buffer.concat(kept).equals(payload)).toBe(true);
  });

  test('a socket that is already reading, or has no handle, is returned as it is', async () => {
    const server = createServer();
    const port = await listen(server);
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = new Socket().connect(port, '127.0.0.1');
    const socket = await accepted;
    expect(adoptAccepted(socket)).toBe(socket);
    expect(readsDirectly(socket)).toBe(false);
    const bare = new Socket();
    bare.pause();
    expect(adoptAccepted(bare)).toBe(bare);
    client.destroy();
    socket.destroy();
    await closeServer(server);
  });

  test('on a socket without direct reads the handler is a data listener', async () => {
    const server = createServer((socket) => socket.end('hello'));
    const port = await listen(server);
    const socket = new Socket().connect(port, '127.0.0.1');
    const seen: string[] = [];
    setChunkHandler(socket, (chunk) => seen.push(`a:${chunk.toString()}`));
    setChunkHandler(socket, (chunk) => seen.push(`b:${chunk.toString()}`));
    await once(socket, 'close');
    expect(seen).toEqual(['b:hello']);
    await closeServer(server);
  });
});
