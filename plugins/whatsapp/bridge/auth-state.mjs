// The auth state of one account (creds + Signal keys), held in memory and persisted by the host.
//
// Every change is handed to the plugin as one snapshot (BufferJSON text) with a sequence number;
// the plugin stores it as one secret value of the account (an atomic replace) and confirms the
// number. A snapshot taken while received messages are still on their way to the host (their
// receipts held, see receipt-gate.mjs) is handed over only once they are settled: the plugin
// handles the bridge's lines in order, so the host stores those messages before the Signal state
// that decrypted them. Saved ahead of them, that state would make WhatsApp's second delivery of a
// message lost in a crash undecryptable ("key used already"), and Baileys drops such a message. Changes close together are coalesced into one snapshot. `flushed()` resolves once the
// newest change is confirmed, and is awaited before any reconnect or exit (an exit right after the
// 515 restart must not lose the fresh credentials) and before new pre-keys are uploaded.
import { BufferJSON, initAuthCreds, proto } from 'baileys';

const COALESCE_MS = 50;
const FLUSH_TIMEOUT_MS = 10000;

export class AuthState {
  // `unconfirmed(seq)`: called when a write was not confirmed within FLUSH_TIMEOUT_MS.
  // `inFlight`: a Map (or Set) whose keys are the ids of messages received and not yet settled.
  constructor(storedText, persist, unconfirmed = () => {}, inFlight = new Map()) {
    const stored = storedText ? JSON.parse(storedText, BufferJSON.reviver) : null;
    this.creds = stored?.creds || initAuthCreds();
    this.keys = stored?.keys || {};
    this.persist = persist;
    this.unconfirmed = unconfirmed;
    this.inFlight = inFlight;
    this.waiting = [];  // snapshots in order: { snapshot, seq, waitFor: Set of message ids }
    this.seq = 0;
    this.savedSeq = 0;
    this.timer = null;
    this.waiters = [];
    const self = this;
    this.state = {
      creds: this.creds,
      keys: {
        async get(type, ids) {
          const bucket = self.keys[type] || {};
          const out = {};
          for (const id of ids) {
            let value = bucket[id];
            if (value && type === 'app-state-sync-key') value = proto.Message.AppStateSyncKeyData.fromObject(value);
            out[id] = value;
          }
          return out;
        },
        async set(data) {
          for (const type in data) {
            self.keys[type] = self.keys[type] || {};
            for (const id in data[type]) {
              const value = data[type][id];
              if (value) self.keys[type][id] = value;
              else delete self.keys[type][id];
            }
          }
          self.changed();
          // Baileys uploads fresh pre-keys right after storing them. A contact's first message is
          // encrypted to one of them, so they must be on disk before the server can hand them
          // out: lost on a crash, that message could never be decrypted.
          const newPreKeys = Object.values(data['pre-key'] || {}).some(Boolean);
          if (newPreKeys) await self.flushed();
        },
      },
    };
  }

  changed() {
    this.seq++;
    if (this.timer) return;
    this.timer = setTimeout(() => this.write(), COALESCE_MS);
  }

  write() {
    this.timer = null;
    const snapshot = this.wiped ? null : JSON.stringify({ creds: this.creds, keys: this.keys }, BufferJSON.replacer);
    const waitFor = new Set(this.inFlight.keys());
    if (this.wiped) this.waiting = [];
    if (this.wiped || (waitFor.size === 0 && this.waiting.length === 0)) return this.persist(snapshot, this.seq);
    this.waiting.push({ snapshot, seq: this.seq, waitFor });
    this.settled();
  }

  // A message is settled (or given up): the newest snapshot that waited only for settled
  // messages is handed over, and the older ones with it are dropped.
  settled() {
    let ready = -1;
    for (let i = 0; i < this.waiting.length; i++) {
      const { waitFor } = this.waiting[i];
      for (const id of waitFor) if (!this.inFlight.has(id)) waitFor.delete(id);
      if (waitFor.size) break;
      ready = i;
    }
    if (ready < 0) return;
    const { snapshot, seq } = this.waiting[ready];
    this.waiting.splice(0, ready + 1);
    this.persist(snapshot, seq);
  }

  // Writes the newest change now if it was not written yet (no confirmation awaited).
  // Snapshots still waiting for messages are not written: those messages come again.
  writePending() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.write();
    }
  }

  // Forgets everything: the next snapshot is null, which makes the plugin delete the stored value.
  wipe() {
    this.wiped = true;
    this.changed();
  }

  saved(seq) {
    this.savedSeq = Math.max(this.savedSeq, seq);
    this.waiters = this.waiters.filter((w) => (w.seq <= this.savedSeq ? (w.resolve(), false) : true));
  }

  flushed() {
    if (this.savedSeq >= this.seq) return Promise.resolve();
    if (this.timer) { clearTimeout(this.timer); this.write(); }
    return new Promise((resolve) => {
      const seq = this.seq;
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.unconfirmed(seq);
        resolve();
      }, FLUSH_TIMEOUT_MS);
      timer.unref();
      const waiter = { seq, resolve: () => { clearTimeout(timer); resolve(); } };
      this.waiters.push(waiter);
    });
  }
}
