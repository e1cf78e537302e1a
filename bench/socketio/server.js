// The seed's real-time core, as the baseline of `scripts/bench compare`: Socket.IO 4 with the
// Redis adapter, so a message reaches the room's members on every instance. No auth, no
// persistence: a client names its room, and messages are relayed, never stored.
//
//   PORT=3001 REDIS_URL=redis://127.0.0.1:6379 node server.js
//
// Events: `join` (room name) → `joined` (room name); `message` ({ room, body }, ack) → `message`
// ({ room, body }) to everyone in the room, the sender included, then the ack ({ ok: true }).
const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const port = parseInt(process.env.PORT || '3001', 10);
const host = process.env.HOST || '127.0.0.1';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on('error', (e) => console.error('redis:', e.message));
  sub.on('error', (e) => console.error('redis (subscriber):', e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const server = http.createServer((req, res) => {
    // HAProxy's health check.
    res.writeHead(req.url === '/healthz' ? 200 : 404).end();
  });
  // WebSocket only, as the load runs it: no long-polling, so no sticky sessions are needed.
  const io = new Server(server, { transports: ['websocket'], serveClient: false, adapter: createAdapter(pub, sub) });

  io.on('connection', (socket) => {
    socket.on('join', (room) => {
      if (typeof room !== 'string') return;
      socket.join(room);
      socket.emit('joined', room);
    });
    socket.on('message', (msg, ack) => {
      if (!msg || typeof msg.room !== 'string' || typeof msg.body !== 'string') return;
      io.to(msg.room).emit('message', { room: msg.room, body: msg.body });
      if (typeof ack === 'function') ack({ ok: true });
    });
  });

  server.listen(port, host, () => console.log(`socket.io on ${host}:${port}`));
  const stop = () => io.close(() => Promise.all([pub.quit(), sub.quit()]).finally(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
