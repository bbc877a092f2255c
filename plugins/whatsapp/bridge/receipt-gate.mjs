// Keeps WhatsApp from hearing that a message arrived before the host stored it.
//
// Baileys answers an incoming message with its delivery receipt as soon as it has decrypted it,
// before the bridge sees the message, and WhatsApp never offers a receipted message again: a host
// killed between that receipt and its store commit would lose the message. So the receipt frame,
// and every frame the socket writes after it (the connection's frames are encrypted in sequence
// and cannot be reordered), is held back, with Baileys told it went out, until the messages it
// receipts are settled: stored by the host (the plugin confirms), or passed over by the bridge. A
// process that dies meanwhile never sends the receipt: WhatsApp keeps the message and delivers it
// again on the next connection, and the host stores it once (its id is unique per account).
//
// Baileys logs "sending receipt for messages", with the message ids, right before it writes the
// receipt, in the same synchronous step: the socket's next frame is that receipt. Frames wait
// milliseconds while the host keeps up. `onReceipt(ids)` hears of every receipt held (the session
// also keeps its Signal state from being saved ahead of those messages, see auth-state.mjs).
// That log line is Baileys' own (the version is pinned); tests/plugins/whatsapp/bridge.test.mjs
// fails if a new version no longer writes it.
const RECEIPT_LOG = 'sending receipt for messages';
// Receipts that promise the host nothing: retries and read marks, and the receipts of the
// attendant's phone's own peer messages (a history sync's notification, key shares), which carry
// no message for the host. Those are not held: Baileys processes a history sync (and the app-state
// queries that come with it) before it hands the notification over, and would wait on its own
// held frames.
const NOT_DELIVERY = new Set(['retry', 'read', 'read-self', 'peer_msg', 'hist_sync']);

export class ReceiptGate {
  constructor({ onReceipt }) {
    this.pending = new Set();  // ids of messages receipted by a held frame, not yet settled
    this.held = [];            // frames in order: { data, options, waitFor: Set of message ids }
    this.nextWaitsFor = null;  // ids the next frame (a receipt) waits for
    this.onReceipt = onReceipt;
    this.send = null;
  }

  // A logger for Baileys that tells the gate about each delivery receipt it is about to write.
  logger(base) {
    const gate = this;
    const wrap = (inner) => ({
      get level() { return inner.level; },
      set level(value) { inner.level = value; },
      child: (...args) => wrap(inner.child(...args)),
      trace: (...args) => inner.trace(...args),
      info: (...args) => inner.info(...args),
      warn: (...args) => inner.warn(...args),
      error: (...args) => inner.error(...args),
      fatal: (...args) => inner.fatal(...args),
      debug: (...args) => {
        if (args[1] === RECEIPT_LOG) gate.receipting(args[0]);
        inner.debug(...args);
      },
    });
    return wrap(base);
  }

  // Takes over the socket's writes (`sock.ws.socket`, the `ws` WebSocket Baileys writes to).
  attach(socket) {
    const send = socket.send.bind(socket);
    this.send = (data, options) => send(data, options);
    socket.send = (data, options, cb) => {
      if (typeof options === 'function') { cb = options; options = undefined; }
      const waitFor = this.nextWaitsFor;
      this.nextWaitsFor = null;
      if (!waitFor && this.held.length === 0) return send(data, options, cb);
      this.held.push({ data, options, waitFor: waitFor || new Set() });
      cb?.();
    };
  }

  receipting({ attrs, messageIds } = {}) {
    if (!Array.isArray(messageIds) || NOT_DELIVERY.has(attrs?.type)) return;
    this.nextWaitsFor = new Set(messageIds);
    for (const id of messageIds) this.pending.add(id);
    this.onReceipt(messageIds);
  }

  // The message `id` is stored by the host, or will never be handed over: what waited for it alone
  // goes out.
  settled(id) {
    if (!this.pending.delete(id)) return;
    while (this.held.length) {
      const head = this.held[0];
      for (const waited of head.waitFor) if (!this.pending.has(waited)) head.waitFor.delete(waited);
      if (head.waitFor.size) break;
      this.held.shift();
      this.send(head.data, head.options);
    }
  }

  // The connection is gone: nothing held goes out (WhatsApp offers those messages again).
  close() {
    this.pending.clear();
    this.held = [];
    this.nextWaitsFor = null;
  }
}
