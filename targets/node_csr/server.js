// A real socket.io 4.x server with connection state recovery (CSR), as its docs suggest, plus the one
// thing they leave out: a recovered session is handed only to a client whose token names its owner.
// Messages go to the room "user:<id>" without an ack callback, so the adapter stores them with offsets
// and replays them to a client that reconnects with its pid and last offset within
// maxDisconnectionDuration. Documented limits the harness should expose: the in-memory adapter forgets
// everything on restart; a client back after the window gets a new session (recovered=false); events
// emitted with an ack callback are never stored.
//
// Rooms: `join` / `leave` {room} (answered {ok: true}, or {ok: false, error} for a bad name) are real
// socket.io rooms, `socket.join("room:<name>")`: membership is per socket, as socket.io keeps it. A send
// with `room` instead of `to` is `socket.to("room:<name>").emit("msg", …)`: every member socket but the
// sender's, stored by CSR like any other broadcast. What CSR promises for rooms: a *recovered* reconnect
// (back within the window, same pid) gets the session's rooms back and every room message emitted while
// it was away; a reconnect after the window (or after a restart) is a new socket in no room: the client
// must join again, and what was sent meanwhile is gone (socket.io does not promise it).
//
// Contract (as the Python targets, see targets/common.py): the token secret comes from the environment
// variable HARNESS_TARGET_SECRET (exit 1 with a message if unset or empty); --port, --ping-interval and
// --ping-timeout (seconds), --max-disconnection-ms; SIGTERM closes every connection and exits 0.
const crypto = require("node:crypto");
const http = require("node:http");
const { Server } = require("socket.io");
const { SessionAwareAdapter } = require("socket.io-adapter");
const { PacketType } = require("socket.io-parser");

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const secret = process.env.HARNESS_TARGET_SECRET || "";
if (!secret) {
  console.error("error: the environment variable HARNESS_TARGET_SECRET (the token secret) is not set or empty");
  process.exit(1);
}
const port = Number(arg("port"));
const windowMs = Number(arg("max-disconnection-ms", "120000"));

// Why not just skipMiddlewares: false? socket.io restores a session from {pid, offset} alone and, in the
// Socket constructor, joins the session's rooms and writes every missed packet to the client before any
// middleware runs: a client holding a stolen pid and no token would still receive the victim's missed
// messages, then a connect error. This adapter holds rooms and missed packets back; the middleware hands
// them over once the token's user is the session's user, and refuses the connection otherwise.
const HELD = Symbol("rooms and missed packets held until the token is checked");

class VerifiedRecoveryAdapter extends SessionAwareAdapter {
  async restoreSession(pid, offset) {
    const session = await super.restoreSession(pid, offset);
    if (!session) return session;
    // A session whose socket id is live again (its owner already recovered it: upstream keeps sessions
    // after a restore) is not restored twice: refusing a second socket with that id would make socket.io
    // remove the owner's live socket from its rooms (Socket._cleanup is keyed by id).
    const pre = this.nsp._preConnectSockets;
    if (this.nsp.sockets.has(session.sid) || (pre && pre.has(session.sid))) return null;
    const held = { rooms: session.rooms, missedPackets: session.missedPackets };
    return { ...session, rooms: [], missedPackets: [], data: { ...session.data, [HELD]: held } };
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(200, { "content-type": "application/json" }); res.end('{"ok":true}'); }
});
const io = new Server(server, {
  pingInterval: Number(arg("ping-interval", "25")) * 1000,
  pingTimeout: Number(arg("ping-timeout", "20")) * 1000,
  maxHttpBufferSize: 64 * 1024,
  adapter: VerifiedRecoveryAdapter,
  connectionStateRecovery: { maxDisconnectionDuration: windowMs, skipMiddlewares: false },
});

const ROOM_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;  // as targets/common.py ROOM_NAME
const BAD_ROOM = "room must be a name of 1-64 letters, digits, _ . : -";

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
  const held = socket.data[HELD];
  delete socket.data[HELD];
  const user = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (socket.recovered && user !== socket.data.user) {
    console.warn(`refused to resume ${socket.data.user}'s session for ${user ? `user ${user}` : "an invalid token"}`);
    return next(new Error(user ? "this session belongs to another user" : "invalid token"));
  }
  if (!user) return next(new Error("invalid token"));
  if (socket.recovered) {
    // what the Socket constructor would have done, now that the owner is known (still before CONNECT)
    held.rooms.forEach((room) => socket.join(room));
    held.missedPackets.forEach((data) => socket.packet({ type: PacketType.EVENT, data }));
  }
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  if (!socket.recovered) socket.join(`user:${socket.data.user}`);
  console.log(`${socket.data.user} connected (recovered=${socket.recovered})`);
  const membership = (joining) => (data, ack) => {
    if (typeof ack !== "function") return;
    const room = data && typeof data === "object" ? data.room : undefined;
    if (typeof room !== "string" || !ROOM_NAME.test(room)) return ack({ ok: false, error: BAD_ROOM });
    if (joining) socket.join(`room:${room}`); else socket.leave(`room:${room}`);
    ack({ ok: true });
  };
  socket.on("join", membership(true));
  socket.on("leave", membership(false));
  socket.on("send", (data, ack) => {
    if (typeof ack !== "function") return;
    const toRoom = data && typeof data === "object" && data.to === undefined;
    const bad = !data || typeof data !== "object" ? "payload must be an object"
      : typeof data.id !== "string" || !data.id ? "id must be a non-empty string"
      : toRoom && (typeof data.room !== "string" || !ROOM_NAME.test(data.room)) ? BAD_ROOM
      : !toRoom && (typeof data.to !== "string" || !data.to) ? "to must be a non-empty string"
      : !Number.isInteger(data.seq) ? "seq must be an integer" : null;
    if (bad) { console.warn(`rejected send from ${socket.data.user}: ${bad}`); return ack({ ok: false, error: bad }); }
    const message = { id: data.id, from: socket.data.user, seq: data.seq, body: data.body || "" };
    if (toRoom) message.room = data.room;
    if (Number.isInteger(data.sent_ns)) message.sent_ns = data.sent_ns;
    if (toRoom) socket.to(`room:${data.room}`).emit("msg", message);
    else io.to(`user:${data.to}`).emit("msg", message);
    ack({ ok: true });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}, window ${windowMs} ms`));
const parent = Number(process.env.HARNESS_PARENT_PID || 0);
if (parent) setInterval(() => { try { process.kill(parent, 0); } catch { process.exit(0); } }, 1000);
// SIGTERM: io.close() closes every client's transport (clients see a transport close and reconnect, as
// after any drop) and the HTTP server; exit 0 when that is done, or after 500 ms whatever is left open
process.on("SIGTERM", () => {
  console.log("SIGTERM: closing connections");
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500);
});
