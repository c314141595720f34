// A real socket.io 4.x server with connection state recovery (CSR), exactly as its docs suggest.
// Messages go to the room "user:<id>" without an ack callback, so the adapter stores them with offsets
// and replays them to a client that reconnects with its pid and last offset within
// maxDisconnectionDuration. Documented limits the harness should expose: the in-memory adapter forgets
// everything on restart; a client back after the window gets a new session (recovered=false); events
// emitted with an ack callback are never stored.
const crypto = require("node:crypto");
const http = require("node:http");
const { Server } = require("socket.io");

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const port = Number(arg("port"));
const secret = arg("secret");
const windowMs = Number(arg("max-disconnection-ms", "120000"));
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(200, { "content-type": "application/json" }); res.end('{"ok":true}'); }
});
const io = new Server(server, {
  pingInterval: Number(arg("ping-interval", "25")) * 1000,
  pingTimeout: Number(arg("ping-timeout", "20")) * 1000,
  maxHttpBufferSize: 64 * 1024,
  connectionStateRecovery: { maxDisconnectionDuration: windowMs, skipMiddlewares: true },
});

function verify(token) {
  if (typeof token !== "string") return null;
  const dot = token.lastIndexOf(".");
  if (dot <= 0) return null;
  const user = token.slice(0, dot);
  const good = crypto.createHmac("sha256", secret).update(user).digest("hex");
  const given = Buffer.from(token.slice(dot + 1));
  return given.length === good.length && crypto.timingSafeEqual(given, Buffer.from(good)) ? user : null;
}

io.use((socket, next) => {
  const user = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (!user) return next(new Error("invalid token"));
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  if (!socket.recovered) socket.join(`user:${socket.data.user}`);
  console.log(`${socket.data.user} connected (recovered=${socket.recovered})`);
  socket.on("send", (data, ack) => {
    if (typeof ack !== "function") return;
    const bad = !data || typeof data !== "object" ? "payload must be an object"
      : typeof data.id !== "string" || !data.id ? "id must be a non-empty string"
      : typeof data.to !== "string" || !data.to ? "to must be a non-empty string"
      : !Number.isInteger(data.seq) ? "seq must be an integer" : null;
    if (bad) { console.warn(`rejected send from ${socket.data.user}: ${bad}`); return ack({ ok: false, error: bad }); }
    const message = { id: data.id, from: socket.data.user, seq: data.seq, body: data.body || "" };
    if (Number.isInteger(data.sent_ns)) message.sent_ns = data.sent_ns;
    io.to(`user:${data.to}`).emit("msg", message);
    ack({ ok: true });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}, window ${windowMs} ms`));
const parent = Number(process.env.HARNESS_PARENT_PID || 0);
if (parent) setInterval(() => { try { process.kill(parent, 0); } catch { process.exit(0); } }, 1000);
process.on("SIGTERM", () => { io.close(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000); });
