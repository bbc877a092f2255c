// The WhatsApp bridge: one Node process that runs Baileys for every WhatsApp account of the host.
// The C++ plugin starts it and talks to it over stdin/stdout, one JSON object per line; the
// protocol is described in PROTOCOL.md beside this file. stderr carries diagnostics only.
//
// What the bridge decides on its own, per account:
//   - reconnecting after a close, by close code (see onClose);
//   - turning Baileys' messages into the host's message events (see messages.mjs);
//   - keeping the auth state (creds + Signal keys) in memory and handing every change to the
//     plugin, which stores it as a secret of the account; before any reconnect or exit the bridge
//     waits until the plugin confirmed the last write;
//   - holding WhatsApp's receipt of an incoming message until the plugin confirmed the host
//     stored it (see receipt-gate.mjs).
import { createInterface } from 'node:readline';
import makeWASocket, { Browsers, DisconnectReason, WA_CERT_DETAILS } from 'baileys';
import { AuthState } from './auth-state.mjs';
import { toHostMessage, receiptStatus, mediaContent } from './messages.mjs';
import { ReceiptGate } from './receipt-gate.mjs';

// stdout carries the protocol, one JSON object a line; libraries that print with console.log
// must not mix their text into it. And what they print is not fit for any log: libsignal prints
// whole sessions with their root and private keys ("Closing session:", session). Their words
// reach the plugin's log at debug level, every argument that is not a plain string, number or
// boolean replaced by its type; nothing of theirs is written to stdout or stderr.
function libraryConsole(level) {
  return (...args) => {
    const words = args.map((a) => (typeof a === 'string' || typeof a === 'number' || typeof a === 'boolean'
      ? String(a) : `[${a === null ? 'null' : Array.isArray(a) ? 'array' : typeof a}]`));
    log('debug', `library ${level}: ${words.join(' ').slice(0, 500)}`);
  };
}
for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'table']) {
  console[level] = libraryConsole(level);
}

export const PROTOCOL_VERSION = 1;
const BAILEYS_VERSION = '7.0.0-rc14';

const silentLogger = {
  level: 'silent',
  child() { return silentLogger; },
  trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {},
};
// WA_BRIDGE_LOG=debug (or trace) sends Baileys' own log to stderr, for diagnosis only: at trace
// level it contains message contents. A history notification (its payload is the chats' past, or
// the key to download it) and media keys are withheld at every level.
const libraryLogger = process.env.WA_BRIDGE_LOG
  ? (await import('pino')).default({
    level: process.env.WA_BRIDGE_LOG,
    redact: { paths: ['histNotification', '*.mediaKey', '*.initialHistBootstrapInlinePayload'], censor: '[withheld]' },
  }, process.stderr)
  : silentLogger;

// --- Lines in and out ---------------------------------------------------------------------------

// Every string well-formed: a lone UTF-16 surrogate (a message can carry one) would be written
// as an escape no JSON reader takes, and the line would be lost with the message in it.
function wellFormed(key, value) {
  return typeof value === 'string' ? value.toWellFormed() : value;
}
function write(object) {
  let text = JSON.stringify(object);
  // JSON.stringify writes a lone surrogate, and only that, as an escape \udXXX: the rare line
  // with one is written again with every string made well-formed (a replacer costs every line).
  if (/\\ud[89a-f]/i.test(text)) text = JSON.stringify(object, wellFormed);
  process.stdout.write(text + '\n');
}
function event(name, account, fields = {}) {
  write({ event: name, account, ...fields });
}
function log(level, text, account) {
  write({ event: 'log', level, text, ...(account ? { account } : {}) });
}

// --- Settings from the plugin ---------------------------------------------------------------------

const settings = {
  wsUrl: undefined,                  // undefined: WhatsApp's own server
  version: [2, 3000, 1027934701],    // the WhatsApp Web version we claim; never fetched at run time
  qrTimeoutMs: undefined,            // undefined: Baileys' 60 s first, 20 s later
  reconnectMaxMs: 60000,
  maxConcurrentConnects: 4,
  sendTimeoutMs: 30000,
  logoutTimeoutMs: 20000,            // how long a logout waits for a connection to open
  storeTimeoutMs: 60000,             // how long a message's receipt waits for the host to store it
};

// Limits how many sessions open their socket at once, so that a mass drop does not become a storm.
class ConnectGate {
  constructor() { this.active = 0; this.waiting = []; }
  async enter() {
    if (this.active < settings.maxConcurrentConnects) { this.active++; return; }
    await new Promise((resolve) => this.waiting.push(resolve));
    this.active++;
  }
  leave() {
    this.active--;
    const next = this.waiting.shift();
    if (next) next();
  }
}
const gate = new ConnectGate();

// How long no further offline or history message must come before a burst is reported.
const BACKLOG_QUIET_MS = 500;

// --- One account -----------------------------------------------------------------------------------

class Session {
  constructor(account, storedAuth, pairingPhone) {
    this.account = account;
    this.inFlight = new Map();  // message id → its timeout: receipt held, not yet settled
    this.auth = new AuthState(storedAuth, (snapshot, seq) => event('state', account, { seq, auth: snapshot }),
      (seq) => log('warn', `the plugin did not confirm state ${seq} in time; going on without it`, account),
      this.inFlight);
    this.pairingPhone = pairingPhone || null;
    this.sock = null;
    this.attempt = 0;
    this.stopped = false;
    this.seen = new Set();      // message ids already handed over (replays after reconnect)
    this.live = new Set();      // ids Baileys handed over as messages (history copies give way)
    this.historySeen = new Set();  // history message ids already handed over
    this.unconfirmed = new Set();  // of those, the ones the plugin has not confirmed yet
    this.sentByUs = new Set();  // ids we sent: their fromMe echo is not a new message
    this.pendingSends = new Map();
    this.sentByClientId = new Map();  // client id → { result, failed } of its send
    this.timer = null;
    this.lastQrAt = 0;
  }

  async open() {
    if (this.stopped) return;
    await gate.enter();
    let released = false;
    const release = () => { if (!released) { released = true; gate.leave(); } };
    this.receipts?.close();
    const receipts = new ReceiptGate({ onReceipt: (ids) => this.receipted(ids) });
    try {
      this.sock = makeWASocket({
        auth: this.auth.state,
        logger: receipts.logger(libraryLogger),
        version: settings.version,
        browser: Browsers.ubuntu('Chrome'),
        waWebSocketUrl: settings.wsUrl,
        qrTimeout: settings.qrTimeoutMs,
        markOnlineOnConnect: false,  // the attendant's phone keeps notifying
        syncFullHistory: false,
        printQRInTerminal: false,
        generateHighQualityLinkPreview: false,
        getMessage: async () => undefined,
      });
    } catch (e) {
      release();
      throw e;
    }
    const sock = this.sock;
    receipts.attach(sock.ws.socket);
    this.receipts = receipts;
    sock.ev.on('creds.update', () => this.auth.changed());
    sock.ev.on('connection.update', (u) => {
      if (sock !== this.sock) return;
      if (u.connection === 'open' || u.connection === 'close' || u.qr) release();
      this.onConnectionUpdate(u);
    });
    sock.ev.on('messages.upsert', (u) => { if (sock === this.sock) this.onMessages(u); });
    // The chats' past that the phone sends a newly linked device (history sync), taken after the
    // messages Baileys hands over in the same go (it emits the history first): a message that is
    // both is the live one, which may open a case where history never does.
    sock.ev.on('messaging-history.set', ({ messages }) => {
      setImmediate(() => {
        if (sock === this.sock) this.onMessages({ messages: messages || [], type: 'history' });
      });
    });
    sock.ev.on('messages.update', (updates) => { if (sock === this.sock) this.onUpdates(updates); });
    sock.ev.on('message-receipt.update', (updates) => { if (sock === this.sock) this.onReceipts(updates); });
    sock.ev.on('lid-mapping.update', (m) => this.onLidMapping(m));
    setTimeout(release, 30000).unref();
  }

  async onConnectionUpdate(u) {
    if (u.qr) {
      const ttl = settings.qrTimeoutMs || (this.lastQrAt ? 20000 : 60000);
      this.lastQrAt = Date.now();
      if (this.pairingPhone && !this.codeRequested) {
        this.codeRequested = true;
        try {
          const code = await this.sock.requestPairingCode(this.pairingPhone);
          event('pairing_code', this.account, { code: code.slice(0, 4) + '-' + code.slice(4), expires_at: Date.now() + ttl });
        } catch (e) {
          log('warn', 'pairing code request failed: ' + e.message, this.account);
        }
      }
      event('qr', this.account, { qr: u.qr, expires_at: Date.now() + ttl });
      event('status', this.account, { state: 'awaiting_qr' });
    }
    if (u.connection === 'connecting') event('status', this.account, { state: 'connecting' });
    if (u.connection === 'open') {
      this.isOpen = true;
      this.attempt = 0;
      const me = this.auth.state.creds.me;
      event('status', this.account, { state: 'connected', me: me?.id, phone: phoneOf(me?.id), name: me?.name || '' });
    }
    if (u.connection === 'close') await this.onClose(u.lastDisconnect?.error);
  }

  // Close codes, as WhatsApp uses them (see the notes of the plugin).
  async onClose(error) {
    const code = error?.output?.statusCode ?? error?.statusCode ?? 0;
    const pairing = !isPaired(this.auth.state.creds);
    this.sock = null;
    this.isOpen = false;
    this.receipts?.close();
    this.receipts = null;
    await this.auth.flushed();
    if (this.stopped) return;
    if (code === DisconnectReason.restartRequired) return this.reconnect(0);
    if (code === DisconnectReason.loggedOut || code === 403) {
      this.auth.wipe();
      await this.auth.flushed();
      this.stopped = true;
      return event('status', this.account, { state: 'reauth_needed', detail: 'disconnected on the phone', code });
    }
    if (code === DisconnectReason.connectionReplaced) {
      this.stopped = true;
      return event('status', this.account, { state: 'disconnected', detail: 'replaced by another WhatsApp Web session', code });
    }
    if (code === 405) {
      this.stopped = true;
      return event('status', this.account, { state: 'error', detail: 'WhatsApp refused this WhatsApp Web version: an update is needed', code });
    }
    if (pairing && code === DisconnectReason.timedOut) {
      // The library ran out of QR refs: no reconnect loop, the attendant refreshes the QR.
      this.stopped = true;
      event('qr_expired', this.account);
      return event('status', this.account, { state: 'disconnected', detail: 'the QR code expired', code });
    }
    const delay = Math.min(settings.reconnectMaxMs, 1000 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    event('status', this.account, {
      state: 'connecting', code,
      detail: `connection lost (${code || 'no code'}), retrying in ${(delay / 1000).toFixed(1)} s`,
    });
    this.reconnect(delay);
  }

  reconnect(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open().catch((e) => log('error', 'reconnect failed: ' + e.message, this.account)), delayMs);
  }

  // Each message is handed to the plugin, whose `stored` settles it (see ReceiptGate); one that
  // is passed over is settled here.
  async onMessages({ messages, type }) {
    const history = type === 'history';
    if (!history) for (const m of messages) if (m.key?.id) remember(this.live, m.key.id, 5000);
    for (const m of messages) {
      const id = m.key?.id;
      // A message delivered to this device (its receipt is held) that Baileys folded into the
      // history it was holding at the same time is a live one.
      const live = !history || (!!id && this.inFlight.has(id) && !this.seen.has(id));
      if (!live) {
        // History has no receipts to settle; a message that also came live is that one.
        if (!id || !m.message || this.live.has(id) || this.historySeen.has(id)) continue;
        remember(this.historySeen, id, 20000);
      } else if (!id || !m.message || this.seen.has(id) || (m.key.fromMe && this.sentByUs.has(id))) {
        // A replay of a message still on its way to the host is settled by its confirmation.
        if (!this.unconfirmed.has(id)) this.settle(id);
        continue;
      } else {
        remember(this.seen, id, 5000);
      }
      const lidMapping = this.sock?.signalRepository?.lidMapping;
      const message = await toHostMessage(m, {
        // Baileys hands over what the server queued while the device was away as 'append' (the
        // stanza's `offline` mark); those are new messages, only late. History sync, the chats'
        // past the phone replays, comes as messaging-history.set (see open()).
        offline: type === 'append',
        history: !live,
        phoneForLid: async (lid) => (lidMapping ? lidMapping.getPNForLID(lid).catch(() => null) : null),
        download: (msg) => this.download(msg),
      });
      if (!message) {
        if (live) this.settle(id);
        continue;
      }
      this.unconfirmed.add(id);
      event('message', this.account, { message });
      if (message.details?.offline || message.details?.history) this.countBacklog();
    }
  }

  // Offline and history messages come in bursts; each burst is reported once, when no more came
  // for a moment, so that the host can say "N older messages imported" instead of N times "new".
  countBacklog() {
    this.backlog = (this.backlog || 0) + 1;
    clearTimeout(this.backlogTimer);
    this.backlogTimer = setTimeout(() => {
      const count = this.backlog;
      this.backlog = 0;
      event('backlog', this.account, { count });
    }, BACKLOG_QUIET_MS);
  }

  async download(m) {
    const { downloadMediaMessage } = await import('baileys');
    const bytes = await downloadMediaMessage(m, 'buffer', {}, { logger: silentLogger, reuploadRequest: this.sock.updateMediaMessage });
    return bytes;
  }

  onUpdates(updates) {
    for (const { key, update } of updates) {
      if (!key?.fromMe || update.status === undefined) continue;
      const status = receiptStatus(update.status);
      if (status) this.delivery(key.id, status);
    }
  }

  onReceipts(updates) {
    for (const { key, receipt } of updates) {
      if (!key?.fromMe) continue;
      this.delivery(key.id, receipt.readTimestamp ? 'read' : 'delivered');
    }
  }

  delivery(id, status) {
    const pending = this.pendingSends.get(id);
    if (pending) { clearTimeout(pending); this.pendingSends.delete(id); }
    event('delivery', this.account, { external_id: id, status });
  }

  // Baileys is about to receipt these messages; the receipt is held until each is settled.
  receipted(ids) {
    // Baileys holds messages back while a new device waits for its first history (and runs the
    // app-state queries that come with it): a message it receipted but holds would keep its
    // receipt, and those queries behind it, waiting for the hold's own timeout (30 s). When the
    // message is not handed over in a moment, Baileys is told to let go of what it holds.
    setTimeout(() => {
      if (ids.some((id) => this.inFlight.has(id) && !this.unconfirmed.has(id))) this.sock?.ev.flush();
    }, 200).unref?.();
    for (const id of ids) {
      if (this.inFlight.has(id)) continue;
      const timer = setTimeout(() => {
        log('warn', `message ${id} was not handed over within ${settings.storeTimeoutMs} ms; receipted anyway`, this.account);
        this.settle(id);
      }, settings.storeTimeoutMs);
      timer.unref?.();
      this.inFlight.set(id, timer);
    }
  }

  // The message is stored by the host, or will not be handed over: its receipt and the Signal
  // state that decrypted it may go out.
  settle(id) {
    clearTimeout(this.inFlight.get(id));
    this.inFlight.delete(id);
    this.unconfirmed.delete(id);
    this.receipts?.settled(id);
    this.auth.settled();
  }

  onLidMapping(mapping) {
    const pairs = Array.isArray(mapping) ? mapping : [mapping];
    for (const p of pairs) if (p?.lid && p?.pn) event('lid', this.account, { lid: p.lid, phone: phoneOf(p.pn) });
  }

  async resolve(to) {
    if (to.includes('@')) return to;
    const digits = to.replace(/\D/g, '');
    const [found] = (await this.sock.onWhatsApp(digits)) || [];
    if (!found?.exists) throw refusal('invalid_argument', 'this number is not on WhatsApp');
    return found.jid;
  }

  // A group this account is not in (or that does not exist) is the sender's mistake, not ours:
  // WhatsApp answers its metadata query with an error or without the group.
  async checkGroup(jid) {
    try {
      await this.sock.groupMetadata(jid);
    } catch (e) {
      const code = e?.output?.statusCode ?? e?.data?.attrs?.code;
      const missing = /group metadata/i.test(e?.message || '') || [400, 401, 403, 404, 406].includes(Number(code));
      if (missing) throw refusal('not_found', 'this WhatsApp group does not exist, or this account is not in it');
      throw e;
    }
  }

  // `client_id`: the same client id never sends twice. A second request with it answers what the
  // first one did, unless that send failed (no acknowledgement): then it goes out once more under
  // the same WhatsApp message id, which the server and the contact's phone never show twice.
  // `message_id`: the id a retry goes out under, when the host knows it and we no longer do (a
  // bridge restarted since the first try).
  async send({ to, text, media, quoted_id: quotedId, client_id: clientId, message_id: retryId }) {
    if (!this.sock || !this.isOpen || !isPaired(this.auth.state.creds)) throw refusal('state', 'the account is not connected');
    const earlier = clientId ? this.sentByClientId.get(clientId) : undefined;
    if (earlier && !earlier.failed) return earlier.result;
    const messageId = retryId || earlier?.result.external_id;
    const jid = await this.resolve(to);
    if (jid.endsWith('@g.us')) await this.checkGroup(jid);
    const content = media ? await mediaContent(media, text) : { text };
    const options = quotedId ? { quoted: { key: { id: quotedId, remoteJid: jid, fromMe: false }, message: {} } } : {};
    if (messageId) options.messageId = messageId;
    const sent = await this.sock.sendMessage(jid, content, options);
    const id = sent.key.id;
    remember(this.sentByUs, id, 5000);
    const result = { external_id: id, to: jid, phone: phoneOf(jid) };
    const entry = { result, failed: false };
    if (clientId) {
      this.sentByClientId.set(clientId, entry);
      if (this.sentByClientId.size > 5000) this.sentByClientId.delete(this.sentByClientId.keys().next().value);
    }
    // No server acknowledgement in time: the message failed (a retry with its client id may send
    // it again, under the same id).
    clearTimeout(this.pendingSends.get(id));
    this.pendingSends.set(id, setTimeout(() => {
      this.pendingSends.delete(id);
      entry.failed = true;
      event('delivery', this.account, { external_id: id, status: 'failed', detail: 'no acknowledgement from WhatsApp' });
    }, settings.sendTimeoutMs));
    return result;
  }

  // `waitForSave` false: the plugin is going away and cannot confirm any more; the last state is
  // written out and the plugin reads it before it sees the process end.
  // With `logout`, answers whether WhatsApp confirmed it ({ logged_out, detail }): a session
  // caught between connections is opened once more to log out, since only an open connection
  // can remove this device from the phone's linked devices.
  async stop(logout, waitForSave = true) {
    this.stopped = true;
    clearTimeout(this.timer);
    // Messages still on their way to the host stay unsettled: neither their receipts nor the
    // Signal state that decrypted them go out, and WhatsApp delivers them again to the next
    // session (started from the state the host stored).
    for (const timer of this.inFlight.values()) clearTimeout(timer);
    const sock = this.sock;
    const wasOpen = this.isOpen;
    this.sock = null;
    this.isOpen = false;
    const paired = isPaired(this.auth.state.creds);
    let result = { logged_out: false, paired };
    if (logout && paired) {
      result = await this.logOut(wasOpen ? sock : null, sock);
    } else if (sock) {
      sock.end(undefined);
    }
    if (logout) this.auth.wipe();
    if (waitForSave) await this.auth.flushed();
    else this.auth.writePending();
    return result;
  }

  async logOut(openSock, staleSock) {
    try {
      let sock = openSock;
      if (!sock) {
        if (staleSock) staleSock.end(undefined);
        sock = await this.openForLogout();
      }
      await sock.logout();
      return { logged_out: true, paired: true };
    } catch (e) {
      return { logged_out: false, paired: true, detail: e.message };
    }
  }

  // A connection of its own, only to log out: resolves once it is open.
  openForLogout() {
    return new Promise((resolve, reject) => {
      const sock = makeWASocket({
        auth: this.auth.state,
        logger: libraryLogger,
        version: settings.version,
        browser: Browsers.ubuntu('Chrome'),
        waWebSocketUrl: settings.wsUrl,
        markOnlineOnConnect: false,
        syncFullHistory: false,
        printQRInTerminal: false,
        getMessage: async () => undefined,
      });
      const timer = setTimeout(() => {
        sock.end(undefined);
        reject(new Error('WhatsApp did not answer in time'));
      }, settings.logoutTimeoutMs);
      sock.ev.on('creds.update', () => this.auth.changed());
      sock.ev.on('connection.update', (u) => {
        if (u.connection === 'open') {
          clearTimeout(timer);
          resolve(sock);
        } else if (u.connection === 'close') {
          clearTimeout(timer);
          const code = u.lastDisconnect?.error?.output?.statusCode ?? 0;
          reject(new Error(`the connection closed (${code || 'no code'})`));
        }
      });
    });
  }
}

// An error the plugin reports as a refusal of `kind` (invalid_argument, state, not_found) rather
// than as an internal failure.
function refusal(kind, message) {
  const e = new Error(message);
  e.kind = kind;
  return e;
}

// Whether the phone linked this device. Asking for a pairing code already sets `creds.me` (to the
// number it was asked for) while nothing is linked yet; the linked device's identity (`account`,
// from pair-success) or the phone's confirmation of the code (`registered`) is what says so.
function isPaired(creds) {
  return !!(creds?.me && (creds.account || creds.registered));
}

function remember(set, id, limit) {
  set.add(id);
  if (set.size > limit) set.delete(set.values().next().value);
}

function phoneOf(jid) {
  if (!jid || !jid.endsWith('@s.whatsapp.net')) return null;
  return '+' + jid.split('@')[0].split(':')[0];
}

// --- Requests from the plugin ------------------------------------------------------------------------

const sessions = new Map();

const operations = {
  hello: ({ protocol }) => {
    if (protocol !== PROTOCOL_VERSION) {
      throw new Error(`protocol ${protocol} asked, this bridge speaks ${PROTOCOL_VERSION}`);
    }
    return { protocol: PROTOCOL_VERSION, baileys: BAILEYS_VERSION, pid: process.pid };
  },
  configure: (s) => {
    if (s.ws_url) settings.wsUrl = s.ws_url;
    if (Array.isArray(s.version) && s.version.length === 3) settings.version = s.version.map(Number);
    if (s.qr_timeout_ms) settings.qrTimeoutMs = Number(s.qr_timeout_ms);
    if (s.reconnect_max_ms) settings.reconnectMaxMs = Number(s.reconnect_max_ms);
    if (s.send_timeout_ms) settings.sendTimeoutMs = Number(s.send_timeout_ms);
    if (s.max_concurrent_connects) settings.maxConcurrentConnects = Math.max(1, Number(s.max_concurrent_connects));
    // Only a test setting ever sets this: it makes the client trust a test server's certificate.
    if (s.test_root_key) WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(s.test_root_key, 'base64');
    return {};
  },
  start: async ({ account, auth, pairing_phone: pairingPhone }) => {
    const old = sessions.get(account);
    if (old) await old.stop(false);
    const session = new Session(account, auth || null, pairingPhone);
    sessions.set(account, session);
    await session.open();
    return { paired: isPaired(session.auth.state.creds) };
  },
  stop: async ({ account, logout, auth }) => {
    let session = sessions.get(account);
    // A session the bridge no longer runs (given up, or before a restart) can still log out.
    if (!session && logout && auth) session = new Session(account, auth, null);
    // Still listed while it stops: the plugin's confirmation of its last state write finds it.
    const result = session ? await session.stop(!!logout) : { logged_out: false };
    if (sessions.get(account) === session) sessions.delete(account);
    return result;
  },
  send: async (request) => {
    const session = sessions.get(request.account);
    if (!session) throw refusal('state', 'the account is not connected');
    return session.send(request);
  },
  resolve: async ({ account, phone }) => {
    const session = sessions.get(account);
    if (!session?.sock || !session.isOpen) throw refusal('state', 'the account is not connected');
    const jid = await session.resolve(phone);
    return { jid, phone: phoneOf(jid) };
  },
  state_saved: ({ account, seq }) => {
    sessions.get(account)?.auth.saved(seq);
    return undefined;  // no answer: this is itself an answer
  },
  settled: ({ account, external_id: id }) => {
    sessions.get(account)?.settle(id);
    return undefined;
  },
  memory: () => ({ rss: process.memoryUsage().rss, sessions: sessions.size }),
  shutdown: async () => {
    await Promise.all([...sessions.values()].map((s) => s.stop(false)));
    setTimeout(() => process.exit(0), 10);
    return {};
  },
};

async function onLine(line) {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return log('error', 'malformed request line ignored');
  }
  const operation = operations[request.op];
  try {
    if (!operation) throw new Error('unknown operation ' + request.op);
    const result = await operation(request);
    if (result !== undefined && request.id !== undefined) write({ id: request.id, ok: true, ...result });
  } catch (e) {
    // `kind` tells the plugin what sort of refusal this is; a closed connection (Baileys' 428)
    // is one the attendant can wait out.
    const kind = e.kind || (e?.output?.statusCode === 428 ? 'state' : undefined);
    if (request.id !== undefined) write({ id: request.id, ok: false, error: e.message, ...(kind ? { kind } : {}) });
  }
}

createInterface({ input: process.stdin }).on('line', (line) => { onLine(line); });
// Nobody reads our stdout any more (the plugin is gone): writing would only fail again.
process.stdout.on('error', () => process.exit(0));
process.stdin.on('end', async () => {
  setTimeout(() => process.exit(0), 5000).unref();  // never outlive the plugin by a stuck stop
  // The plugin is closing: write out what we hold and leave once stdout has drained.
  await Promise.all([...sessions.values()].map((s) => s.stop(false, false).catch(() => {})));
  process.stdout.write('', () => process.exit(0));
});
process.on('uncaughtException', (e) => log('error', 'uncaught: ' + (e?.stack || e)));
process.on('unhandledRejection', (e) => log('error', 'unhandled: ' + (e?.stack || e)));
