// A WhatsApp server for tests, on loopback only. It speaks enough of the multi-device protocol
// for the unmodified Baileys client: the Noise XX handshake with a certificate chain of its own,
// QR refs, pairing, the 515 restart and login, prekey upload, 1:1 text both ways with Signal
// encryption (npm libsignal, as Baileys uses), receipts, LID senders, an offline queue and the
// close codes a real server uses (401, 405, 440, 515).
//
// The binary-node codec and the protobuf definitions are Baileys' own: this server tests how our
// bridge uses Baileys, not Baileys' codec.
//
// Two listeners, both on 127.0.0.1:
//   - the chat socket (ws://127.0.0.1:<ws_port>/ws/chat) the client connects to;
//   - a small HTTP control interface for the tests (see control.mjs).
//
// A client trusts this server only when its WA_CERT_DETAILS.PUBLIC_KEY is set to root_key
// (GET /info), which only a test setting of the bridge does.
import { createHmac, hkdfSync, randomBytes, createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { WebSocketServer } from 'ws';
import { MediaHost, encryptMedia, decryptMedia } from './media.mjs';
import libsignal from 'libsignal';
import {
  Curve,
  proto,
  encodeBinaryNode,
  decodeBinaryNode,
  getBinaryNodeChild,
  getBinaryNodeChildren,
  writeRandomPadMax16,
} from 'baileys';

const NOISE_MODE = Buffer.from('Noise_XX_25519_AESGCM_SHA256\0\0\0\0');
const NOISE_WA_HEADER = Buffer.from([87, 65, 6, 3]);
const ADV_ACCOUNT_SIG_PREFIX = Buffer.from([6, 0]);
const SERVER_JID = 's.whatsapp.net';
const KEY_TYPE = Buffer.from([5]);

const sha256 = (data) => createHash('sha256').update(data).digest();
const withType = (key) => (key.length === 33 ? Buffer.from(key) : Buffer.concat([KEY_TYPE, key]));
const withoutType = (key) => (key.length === 33 ? Buffer.from(key.subarray(1)) : Buffer.from(key));
const nowSeconds = () => String(Math.floor(Date.now() / 1000));

function gcm(encrypt, key, counter, ad, data) {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(counter, 8);
  return encrypt ? aesGcmEncrypt(key, iv, ad, data) : aesGcmDecrypt(key, iv, ad, data);
}

import { createCipheriv, createDecipheriv } from 'node:crypto';
function aesGcmEncrypt(key, iv, ad, data) {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(ad);
  return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
}
function aesGcmDecrypt(key, iv, ad, data) {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(ad);
  d.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
}

// The responder side of Noise XX as WhatsApp runs it.
class NoiseResponder {
  constructor() {
    this.hash = NOISE_MODE;
    this.salt = NOISE_MODE;
    this.key = NOISE_MODE;
    this.counter = 0;
    this.transport = null;
  }
  authenticate(data) {
    if (!this.transport) this.hash = sha256(Buffer.concat([this.hash, data]));
  }
  mixIntoKey(data) {
    const okm = Buffer.from(hkdfSync('sha256', data, this.salt, Buffer.alloc(0), 64));
    this.salt = okm.subarray(0, 32);
    this.key = okm.subarray(32);
    this.counter = 0;
  }
  encrypt(plain) {
    if (this.transport) return gcm(true, this.transport.enc, this.transport.w++, Buffer.alloc(0), plain);
    const out = gcm(true, this.key, this.counter++, this.hash, plain);
    this.authenticate(out);
    return out;
  }
  decrypt(cipher) {
    if (this.transport) return gcm(false, this.transport.dec, this.transport.r++, Buffer.alloc(0), cipher);
    const out = gcm(false, this.key, this.counter++, this.hash, cipher);
    this.authenticate(cipher);
    return out;
  }
  finish() {
    const okm = Buffer.from(hkdfSync('sha256', Buffer.alloc(0), this.salt, Buffer.alloc(0), 64));
    // The initiator writes with the first half; the responder reads with it.
    this.transport = { dec: okm.subarray(0, 32), enc: okm.subarray(32), r: 0, w: 0 };
  }
}

// The server's certificate chain: root → intermediate → leaf (the server's static key).
function makeCertificates() {
  const root = Curve.generateKeyPair();
  const intermediate = Curve.generateKeyPair();
  const staticKey = Curve.generateKeyPair();
  const Details = proto.CertChain.NoiseCertificate.Details;
  const intermediateDetails = Details.encode({
    serial: 1, issuerSerial: 0, key: intermediate.public, notBefore: 0, notAfter: 4102444800,
  }).finish();
  const leafDetails = Details.encode({
    serial: 2, issuerSerial: 1, key: staticKey.public, notBefore: 0, notAfter: 4102444800,
  }).finish();
  const chain = proto.CertChain.encode({
    intermediate: { details: intermediateDetails, signature: Curve.sign(root.private, intermediateDetails) },
    leaf: { details: leafDetails, signature: Curve.sign(intermediate.private, leafDetails) },
  }).finish();
  return { root, staticKey, chain: Buffer.from(chain) };
}

// In-memory Signal store of one simulated phone (a contact of the attendant).
class ContactStore {
  constructor() {
    this.identity = libsignal.keyhelper.generateIdentityKeyPair();
    this.registrationId = libsignal.keyhelper.generateRegistrationId();
    this.signedPreKey = libsignal.keyhelper.generateSignedPreKey(this.identity, 1);
    this.preKeys = new Map();
    this.nextPreKey = 1;
    this.sessions = new Map();
  }
  newPreKey() {
    const pk = libsignal.keyhelper.generatePreKey(this.nextPreKey++);
    this.preKeys.set(pk.keyId, pk.keyPair);
    return pk;
  }
  async getOurIdentity() { return this.identity; }
  async getOurRegistrationId() { return this.registrationId; }
  async isTrustedIdentity() { return true; }
  async saveIdentity() { return false; }
  async loadSession(id) { return this.sessions.get(id); }
  async storeSession(id, record) { this.sessions.set(id, record); }
  async loadPreKey(id) { return this.preKeys.get(Number(id)); }
  async removePreKey(id) { this.preKeys.delete(Number(id)); }
  async loadSignedPreKey(id) {
    return Number(id) === this.signedPreKey.keyId ? this.signedPreKey.keyPair : undefined;
  }
}

export class WhatsAppTestServer {
  constructor({ refs = 3, log = () => {} } = {}) {
    this.refsPerPairing = refs;
    this.log = log;
    this.certs = makeCertificates();
    this.devices = new Map();     // jid user:device → registered companion
    this.contacts = new Map();    // phone → { store, lid, pushName }
    this.lids = new Map();        // lid user → phone (or null when the phone stays hidden)
    this.pendingRefs = new Map(); // ref → connection waiting for a scan
    this.connections = new Set();
    this.received = [];           // messages the clients sent, decrypted
    this.receipts = [];           // receipts the clients sent
    this.offline = new Map();     // device key → queued stanzas
    this.unacked = new Map();     // device key → Map(message id → stanza) sent, not yet receipted
    this.minVersion = null;       // [a,b,c]: older clients are refused with 405
    this.handshakeDelayMs = 0;    // how long the server takes to answer a client hello
    this.opening = 0;             // connections between accept and login (or refusal, or close)
    this.openingPeak = 0;         // the most of them at once since the last reset
    this.refusing = false;        // close every new connection at once, as an unreachable server
    this.refused = 0;             // connections closed that way
    this.nextId = 1;
    this.media = new MediaHost(log);
  }

  async listen(port = 0) {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port });
    this.wss.on('connection', (ws) => this.accept(ws));
    const listening = new Promise((resolve) => this.wss.on('listening', () => resolve(this.wss.address().port)));
    await this.media.listen();
    return listening;
  }

  close() {
    for (const c of this.connections) c.ws.terminate();
    this.media.close();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }

  info() {
    return {
      root_key: Buffer.from(this.certs.root.public).toString('base64'),
      devices: [...this.devices.values()].map((d) => ({
        jid: d.jid, lid: d.lid, phone: d.phone, connected: !!this.connectionOf(d), prekeys: d.preKeys.size,
        logged_out: !!d.loggedOut, presences: d.presences || [],
        queued: (this.offline.get(`${d.phone}:${d.device}`) || []).length,
        unreceipted: this.unacked.get(`${d.phone}:${d.device}`)?.size || 0,
      })),
      pending_qr_refs: this.pendingRefs.size,
      opening_peak: this.openingPeak,
      refused: this.refused,
      media_ca: this.media.certFile,
    };
  }

  // --- Connections ------------------------------------------------------------------------------

  accept(ws) {
    if (this.refusing) {
      this.refused++;
      return ws.terminate();
    }
    const conn = { ws, noise: new NoiseResponder(), inBytes: Buffer.alloc(0), introSeen: false, device: null };
    this.connections.add(conn);
    conn.opening = true;
    this.opening++;
    this.openingPeak = Math.max(this.openingPeak, this.opening);
    ws.on('message', (data) => this.onData(conn, Buffer.from(data)).catch((e) => {
      this.log('connection error: ' + e.stack);
      ws.terminate();
    }));
    ws.on('close', () => {
      this.opened(conn);
      this.connections.delete(conn);
      for (const [ref, c] of this.pendingRefs) if (c === conn) this.pendingRefs.delete(ref);
    });
  }

  async onData(conn, data) {
    conn.inBytes = Buffer.concat([conn.inBytes, data]);
    if (!conn.introSeen) {
      if (conn.inBytes.length < 4) return;
      if (!conn.inBytes.subarray(0, 4).equals(NOISE_WA_HEADER)) throw new Error('bad intro header');
      conn.noise.authenticate(NOISE_WA_HEADER);
      conn.inBytes = conn.inBytes.subarray(4);
      conn.introSeen = true;
    }
    while (conn.inBytes.length >= 3) {
      const size = (conn.inBytes[0] << 16) | (conn.inBytes[1] << 8) | conn.inBytes[2];
      if (conn.inBytes.length < size + 3) return;
      const frame = conn.inBytes.subarray(3, size + 3);
      conn.inBytes = conn.inBytes.subarray(size + 3);
      await this.onFrame(conn, frame);
    }
  }

  sendRaw(conn, bytes) {
    const frame = Buffer.alloc(3 + bytes.length);
    frame.writeUIntBE(bytes.length, 0, 3);
    bytes.copy(frame, 3);
    if (conn.ws.readyState === 1) conn.ws.send(frame);
  }

  sendNode(conn, node) {
    this.sendRaw(conn, conn.noise.encrypt(encodeBinaryNode(node)));
  }

  async onFrame(conn, frame) {
    if (!conn.serverHelloSent) return this.onClientHello(conn, frame);
    if (!conn.noise.transport) return this.onClientFinish(conn, frame);
    const node = await decodeBinaryNode(conn.noise.decrypt(frame));
    return this.onNode(conn, node);
  }

  // The connection is past its opening: logged in, refused, or waiting for a QR scan.
  opened(conn) {
    if (!conn.opening) return;
    conn.opening = false;
    this.opening--;
  }

  async onClientHello(conn, frame) {
    if (this.handshakeDelayMs) await new Promise((r) => setTimeout(r, this.handshakeDelayMs));
    const { clientHello } = proto.HandshakeMessage.decode(frame);
    const n = conn.noise;
    conn.clientEphemeral = Buffer.from(clientHello.ephemeral);
    n.authenticate(conn.clientEphemeral);
    conn.ephemeral = Curve.generateKeyPair();
    n.authenticate(conn.ephemeral.public);
    n.mixIntoKey(Curve.sharedKey(conn.ephemeral.private, conn.clientEphemeral));
    const staticEnc = n.encrypt(this.certs.staticKey.public);
    n.mixIntoKey(Curve.sharedKey(this.certs.staticKey.private, conn.clientEphemeral));
    const payload = n.encrypt(this.certs.chain);
    conn.serverHelloSent = true;
    this.sendRaw(conn, Buffer.from(proto.HandshakeMessage.encode({
      serverHello: { ephemeral: conn.ephemeral.public, static: staticEnc, payload },
    }).finish()));
  }

  onClientFinish(conn, frame) {
    const { clientFinish } = proto.HandshakeMessage.decode(frame);
    const n = conn.noise;
    const clientStatic = n.decrypt(Buffer.from(clientFinish.static));
    n.mixIntoKey(Curve.sharedKey(conn.ephemeral.private, clientStatic));
    const payload = proto.ClientPayload.decode(n.decrypt(Buffer.from(clientFinish.payload)));
    n.finish();
    conn.noiseKey = clientStatic;
    const v = payload.userAgent?.appVersion;
    conn.version = v ? [v.primary, v.secondary, v.tertiary] : [0, 0, 0];
    if (this.minVersion && compareVersions(conn.version, this.minVersion) < 0) {
      return this.refuse(conn, 405);
    }
    if (payload.devicePairingData) return this.startPairing(conn, payload.devicePairingData);
    return this.login(conn, String(payload.username), payload.device || 0);
  }

  refuse(conn, reason) {
    this.opened(conn);
    this.sendNode(conn, { tag: 'failure', attrs: { reason: String(reason) } });
    setTimeout(() => conn.ws.close(), 50);
  }

  // --- Pairing ------------------------------------------------------------------------------------

  startPairing(conn, pairing) {
    this.opened(conn);
    conn.registration = {
      registrationId: Buffer.from(pairing.eRegid).readUInt32BE(0),
      identity: Buffer.from(pairing.eIdent),
      signedPreKey: {
        keyId: Buffer.from(pairing.eSkeyId).readUIntBE(0, 3),
        publicKey: Buffer.from(pairing.eSkeyVal),
        signature: Buffer.from(pairing.eSkeySig),
      },
    };
    const refs = [];
    for (let i = 0; i < this.refsPerPairing; i++) {
      const ref = '2@' + randomBytes(24).toString('base64');
      refs.push(ref);
      this.pendingRefs.set(ref, conn);
    }
    conn.refs = refs;
    this.sendNode(conn, {
      tag: 'iq',
      attrs: { from: SERVER_JID, type: 'set', id: this.id(), xmlns: 'md' },
      content: [{ tag: 'pair-device', attrs: {},
        content: refs.map((r) => ({ tag: 'ref', attrs: {}, content: Buffer.from(r) })) }],
    });
  }

  // The phone scans a QR: `qr` is the text the client displayed.
  scan(qr, { phone, lid, deviceId } = {}) {
    const text = qr.includes('#') ? qr.slice(qr.indexOf('#') + 1) : qr;
    const [ref, noiseB64, identityB64, advSecretB64] = text.split(',');
    const conn = this.pendingRefs.get(ref);
    if (!conn) throw new Error('unknown or expired QR');
    if (!Buffer.from(noiseB64, 'base64').equals(conn.noiseKey)) throw new Error('QR noise key mismatch');
    const identity = Buffer.from(identityB64, 'base64');
    if (!identity.equals(conn.registration.identity)) throw new Error('QR identity mismatch');
    phone = phone || '5511' + String(900000000 + Math.floor(Math.random() * 99999999));
    lid = lid || String(100000000000000 + Math.floor(Math.random() * 1e14));
    const account = this.accountKey(phone);
    const existing = [...this.devices.values()].filter((d) => d.phone === phone).map((d) => d.device);
    const device = deviceId || (existing.length ? Math.max(...existing) + 1 : 1);

    const details = Buffer.from(proto.ADVDeviceIdentity.encode({
      rawId: randomBytes(4).readUInt32BE(0), timestamp: Math.floor(Date.now() / 1000), keyIndex: device,
    }).finish());
    const accountSignature = Curve.sign(account.private,
      Buffer.concat([ADV_ACCOUNT_SIG_PREFIX, details, identity]));
    const signed = Buffer.from(proto.ADVSignedDeviceIdentity.encode({
      details, accountSignatureKey: account.public, accountSignature,
    }).finish());
    const hmac = createHmac('sha256', Buffer.from(advSecretB64, 'base64')).update(signed).digest();
    const identityHmac = Buffer.from(proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish());

    const jid = `${phone}:${device}@${SERVER_JID}`;
    this.devices.set(`${phone}:${device}`, {
      jid, phone, device, lid: `${lid}:${device}@lid`, lidUser: lid,
      noiseKey: conn.noiseKey, ...conn.registration, preKeys: new Map(), identityKey: identity,
    });
    this.lids.set(lid, phone);
    for (const r of conn.refs) this.pendingRefs.delete(r);
    this.sendNode(conn, {
      tag: 'iq',
      attrs: { from: SERVER_JID, type: 'set', id: this.id(), t: nowSeconds() },
      content: [{ tag: 'pair-success', attrs: {}, content: [
        { tag: 'device-identity', attrs: { 'key-index': String(device) }, content: identityHmac },
        { tag: 'platform', attrs: { name: 'smba' } },
        { tag: 'device', attrs: { jid, lid: `${lid}:${device}@lid` } },
      ] }],
    });
    conn.pairedAs = `${phone}:${device}`;
    return { jid, phone, lid };
  }

  accountKey(phone) {
    this.accountKeys = this.accountKeys || new Map();
    if (!this.accountKeys.has(phone)) this.accountKeys.set(phone, Curve.generateKeyPair());
    return this.accountKeys.get(phone);
  }

  // --- Login ---------------------------------------------------------------------------------------

  login(conn, phone, device) {
    const key = `${phone}:${device}`;
    const d = this.devices.get(key);
    if (!d || d.loggedOut || !conn.noiseKey.equals(d.noiseKey)) return this.refuse(conn, 401);

    // Another connection of the same device is replaced, as WhatsApp does (440 to the old one).
    for (const other of this.connections) {
      if (other !== conn && other.device === key) this.streamError(other, 440, 'conflict');
    }
    conn.device = key;
    this.opened(conn);
    this.sendNode(conn, {
      tag: 'success',
      attrs: { t: nowSeconds(), props: '1', abprops: '1', location: 'lo', lid: d.lid, creation: nowSeconds() },
    });
    setTimeout(() => this.flushOffline(conn), 200);
  }

  // What waits for the device: first the messages an earlier connection got but never answered
  // with a receipt (its client died before it could), then what came while it was away. As on
  // WhatsApp, a message leaves the server only once the client receipted it.
  flushOffline(conn) {
    const unacked = [...(this.unacked.get(conn.device)?.values() || [])];
    this.unacked.delete(conn.device);
    const queued = [...unacked, ...(this.offline.get(conn.device) || [])];
    this.offline.delete(conn.device);
    for (const node of queued) {
      node.attrs.offline = '1';
      this.sendMessageNode(conn, node);
    }
    this.sendNode(conn, { tag: 'ib', attrs: {}, content: [{ tag: 'offline', attrs: { count: String(queued.length) } }] });
  }

  // Sends a message stanza to a device now, or into its offline queue while it is away.
  toDevice(d, node) {
    const conn = this.connectionOf(d);
    if (conn) return this.sendMessageNode(conn, node);
    const key = `${d.phone}:${d.device}`;
    this.offline.set(key, [...(this.offline.get(key) || []), node]);
  }

  // Sends a message stanza to a device and keeps it until the client's receipt (or ack) for it.
  sendMessageNode(conn, node) {
    if (!this.unacked.has(conn.device)) this.unacked.set(conn.device, new Map());
    this.unacked.get(conn.device).set(node.attrs.id, node);
    this.sendNode(conn, node);
  }

  // A receipt or ack from the client for message ids (one in attrs, more in a list child); a
  // retry receipt asks for the message again and acknowledges nothing.
  acknowledged(conn, node) {
    if (!conn.device || node.attrs.type === 'retry') return;
    const pending = this.unacked.get(conn.device);
    if (!pending) return;
    pending.delete(node.attrs.id);
    const list = Array.isArray(node.content) ? node.content.find((c) => c.tag === 'list') : undefined;
    for (const item of Array.isArray(list?.content) ? list.content : []) pending.delete(item.attrs?.id);
  }

  // The device's open connection; one whose socket is closing (its bridge just died) is not, so
  // what is sent meanwhile waits in the offline queue.
  connectionOf(device) {
    for (const c of this.connections) {
      if (c.device === `${device.phone}:${device.device}` && c.ws.readyState === 1) return c;
    }
    return null;
  }

  streamError(conn, code, child) {
    const content = child ? [{ tag: child, attrs: child === 'conflict' ? { type: 'replaced' } : {} }] : undefined;
    this.sendNode(conn, { tag: 'stream:error', attrs: { code: String(code) }, content });
    setTimeout(() => conn.ws.close(), 50);
  }

  // Ends a device's session the way WhatsApp does for `code`; 401 also unlinks it.
  kick(phone, code) {
    let kicked = 0;
    for (const d of this.devices.values()) {
      if (d.phone !== phone) continue;
      if (code === 401) d.loggedOut = true;
      const conn = this.connectionOf(d);
      if (!conn) continue;
      kicked++;
      if (code === 0) conn.ws.terminate();  // a dropped connection, no goodbye
      else this.streamError(conn, code, code === 440 ? 'conflict' : undefined);
    }
    return kicked;
  }

  // --- Stanzas from the client ----------------------------------------------------------------------

  async onNode(conn, node) {
    if (node.tag === 'iq') return this.onIq(conn, node);
    if (node.tag === 'message') return this.onMessage(conn, node);
    if (node.tag === 'presence') {
      const d = conn.device && this.devices.get(conn.device);
      if (d) d.presences = [...(d.presences || []), node.attrs.type || 'available'];
      return;
    }
    // A negative ack (with an error) is no acknowledgement: the client could not take the message.
    if (node.tag === 'ack' && node.attrs.class === 'message' && !node.attrs.error) return this.acknowledged(conn, node);
    if (node.tag === 'receipt') {
      this.acknowledged(conn, node);
      this.receipts.push({ device: conn.device, id: node.attrs.id, to: node.attrs.to, type: node.attrs.type || 'delivery' });
      return this.sendNode(conn, { tag: 'ack', attrs: { id: node.attrs.id, class: 'receipt', from: node.attrs.to || SERVER_JID } });
    }
  }

  onIq(conn, node) {
    const child = Array.isArray(node.content) ? node.content[0] : undefined;
    const result = (content) => this.sendNode(conn, {
      tag: 'iq', attrs: { id: node.attrs.id, type: 'result', from: node.attrs.to || SERVER_JID }, content,
    });
    if (node.attrs.type === 'result') {
      // The client's answer to pair-success: the 515 restart follows, as on WhatsApp.
      if (child?.tag === 'pair-device-sign' && conn.pairedAs) setTimeout(() => this.streamError(conn, 515), 50);
      return;
    }
    const d = conn.device && this.devices.get(conn.device);
    if (node.attrs.xmlns === 'encrypt' && child?.tag === 'count') {
      return result([{ tag: 'count', attrs: { value: String(d ? d.preKeys.size : 0) } }]);
    }
    if (node.attrs.xmlns === 'encrypt' && node.attrs.type === 'set' && d) {
      for (const key of getBinaryNodeChildren(getBinaryNodeChild(node, 'list'), 'key')) {
        const id = Buffer.from(getBinaryNodeChild(key, 'id').content).readUIntBE(0, 3);
        d.preKeys.set(id, Buffer.from(getBinaryNodeChild(key, 'value').content));
      }
      return result();
    }
    if (node.attrs.xmlns === 'encrypt' && child?.tag === 'key') return result([this.contactBundles(child)]);
    if (node.attrs.xmlns === 'usync') return result([this.usyncResult(child)]);
    if (node.attrs.xmlns === 'w:m' && child?.tag === 'media_conn') {
      return result([{ tag: 'media_conn', attrs: { auth: this.media.auth, ttl: '3600', auth_ttl: '3600', max_buckets: '12' },
        content: [{ tag: 'host', attrs: { hostname: this.media.host, maxContentLengthBytes: '104857600' } }] }]);
    }
    // App state (contacts' names, archived and muted chats...): this test account has none, so
    // every collection the client asks for is answered at the version it has, with no patches.
    if (node.attrs.xmlns === 'w:sync:app:state' && child?.tag === 'sync') {
      const collections = getBinaryNodeChildren(child, 'collection').map((c) => ({
        tag: 'collection', attrs: { name: c.attrs.name, version: c.attrs.version || '0' } }));
      return result([{ tag: 'sync', attrs: {}, content: collections }]);
    }
    if (node.attrs.xmlns === 'md' && child?.tag === 'remove-companion-device') {
      if (d) d.loggedOut = true;
      result();
      return setTimeout(() => this.streamError(conn, 401), 50);
    }
    return result();
  }

  // --- Messages, both ways ---------------------------------------------------------------------------

  contact(phone) {
    if (!this.contacts.has(phone)) {
      this.contacts.set(phone, { phone, store: new ContactStore(), lid: null, pushName: `Contact ${phone.slice(-4)}` });
    }
    return this.contacts.get(phone);
  }

  // The phone behind a user part that may be a LID (null when unknown or hidden).
  phoneOfUser(user) {
    return this.lids.has(user) ? this.lids.get(user) : user;
  }

  // Every WhatsApp user has a LID; a contact without one gets one on first lookup, as clients
  // of 7.x ask for it before they write to a phone number.
  lidOfUser(user) {
    const own = [...this.devices.values()].find((d) => d.phone === user);
    if (own) return own.lidUser;
    const contact = this.contact(user);
    if (!contact.lid) {
      contact.lid = String(200000000000000 + Math.floor(Math.random() * 1e14));
      this.lids.set(contact.lid, user);
    }
    return contact.lid;
  }

  // The WhatsApp message (proto.Message fields) for what a contact sends: text, or media
  // (encrypted and put on the media host), a location, a contact card; optionally quoting.
  messageContent({ text, media, location, contactCard, quoted }) {
    const context = quoted ? { contextInfo: { stanzaId: quoted.id, participant: quoted.participant,
      quotedMessage: { conversation: quoted.text || '' } } } : {};
    if (media) {
      const kind = media.kind === 'voice_note' ? 'ptt' : media.kind;
      const plain = Buffer.from(media.data, 'base64');
      const enc = encryptMedia(plain, kind);
      const { url, directPath } = this.media.put(enc.file);
      const common = { url, directPath, mediaKey: enc.mediaKey, fileSha256: enc.fileSha256,
        fileEncSha256: enc.fileEncSha256, fileLength: plain.length, mimetype: media.mime,
        mediaKeyTimestamp: Math.floor(Date.now() / 1000), ...context };
      if (kind === 'image') return { imageMessage: { ...common, caption: text || undefined } };
      if (kind === 'video') return { videoMessage: { ...common, caption: text || undefined, seconds: 1 } };
      if (kind === 'audio' || kind === 'ptt') return { audioMessage: { ...common, ptt: kind === 'ptt', seconds: 1 } };
      return { documentMessage: { ...common, fileName: media.file_name || 'file', caption: text || undefined } };
    }
    if (location) {
      return { locationMessage: { degreesLatitude: location.latitude, degreesLongitude: location.longitude,
        name: location.name, ...context } };
    }
    if (contactCard) {
      return { contactMessage: { displayName: contactCard.name, vcard: contactCard.vcard, ...context } };
    }
    if (quoted) return { extendedTextMessage: { text, ...context } };
    return { conversation: text };
  }

  // The phone `from` writes to the attendant `to` (a phone number with a paired device), directly
  // or in the group `group` (a group id without @g.us).
  //
  // `fromPhone`: the attendant typed this on the phone, to `from`; the phone syncs it to its
  // linked devices as a device-sent message (the "echo" a companion sees as fromMe).
  async deliver({ from, to, text, pushName, lid, hidePhone = false, id, media, location, contactCard, quoted, group, fromPhone = false }) {
    if (fromPhone) return this.deliverFromPhone({ contactPhone: from, to, text, id });
    const contact = this.contact(from);
    if (pushName) contact.pushName = pushName;
    if (lid) {
      contact.lid = lid;
      this.lids.set(lid, hidePhone ? null : from);
    }
    const messageId = id || '3EB0' + randomBytes(8).toString('hex').toUpperCase();
    const content = this.messageContent({ text, media, location, contactCard, quoted });
    const plain = writeRandomPadMax16(proto.Message.encode(content).finish());
    const targets = [...this.devices.values()].filter((d) => d.phone === to && !d.loggedOut);
    if (!targets.length) throw new Error('no device paired for ' + to);
    const senderJid = lid ? `${lid}@lid` : `${from}@${SERVER_JID}`;
    for (const d of targets) {
      const enc = await this.encryptTo(contact, d, plain);
      const attrs = { id: messageId, type: media ? 'media' : 'text', t: nowSeconds(), notify: contact.pushName };
      if (group) {
        // A group message sent through the sender's 1:1 session (as WhatsApp does for retries):
        // enough for the client to see a group message from a participant.
        attrs.from = `${group}@g.us`;
        attrs.participant = senderJid;
        if (lid) attrs.addressing_mode = 'lid';
        if (lid && !hidePhone) attrs.participant_pn = `${from}@${SERVER_JID}`;
      } else if (lid) {
        attrs.from = senderJid;
        attrs.addressing_mode = 'lid';
        if (!hidePhone) attrs.sender_pn = `${from}@${SERVER_JID}`;
      } else {
        attrs.from = senderJid;
      }
      const node = { tag: 'message', attrs, content: [{ tag: 'enc', attrs: { v: '2', type: enc.type }, content: enc.body }] };
      this.toDevice(d, node);
    }
    return { id: messageId };
  }

  async deliverFromPhone({ contactPhone, to, text, id }) {
    this.contact(contactPhone);
    const phone = this.contact(to);  // the attendant's phone (device 0), as a Signal peer
    const messageId = id || '3EB0' + randomBytes(8).toString('hex').toUpperCase();
    const plain = writeRandomPadMax16(proto.Message.encode({ deviceSentMessage: {
      destinationJid: `${contactPhone}@${SERVER_JID}`, message: { conversation: text } } }).finish());
    for (const d of [...this.devices.values()].filter((x) => x.phone === to && !x.loggedOut)) {
      const enc = await this.encryptTo(phone, d, plain);
      const node = { tag: 'message', attrs: { id: messageId, type: 'text', t: nowSeconds(),
        from: `${to}@${SERVER_JID}`, recipient: `${contactPhone}@${SERVER_JID}` },
      content: [{ tag: 'enc', attrs: { v: '2', type: enc.type }, content: enc.body }] };
      const conn = this.connectionOf(d);
      if (conn) this.sendNode(conn, node);
    }
    return { id: messageId };
  }

  // The attendant's phone hands its linked devices the chats' past (a history sync), as WhatsApp
  // does after a pairing: one peer message from the phone (device 0) carrying a protocol message
  // whose HistorySync payload is inline and deflated, as the first chunk comes from WhatsApp.
  //   chats: [{ with: contact phone or chat id, messages: [{ text, id?, from_me?, participant?,
  //             timestamp? (seconds) }] }]
  //   sync_type: INITIAL_BOOTSTRAP (default) or RECENT
  async history({ to, chats, syncType = 'INITIAL_BOOTSTRAP' }) {
    const type = proto.HistorySync.HistorySyncType[syncType];
    if (type === undefined) throw new Error('unknown history sync type ' + syncType);
    const conversations = (chats || []).map((chat) => {
      // A phone number, or a whole chat id (e.g. status@broadcast, whose messages name a participant).
      const raw = String(chat.with).includes('@');
      const jid = raw ? String(chat.with) : `${chat.with}@${SERVER_JID}`;
      if (!raw) this.contact(String(chat.with));
      return {
        id: jid,
        messages: (chat.messages || []).map((m) => ({ message: {
          key: { remoteJid: jid, fromMe: !!m.from_me, id: m.id || '3EB0' + randomBytes(8).toString('hex').toUpperCase(),
            ...(m.participant ? { participant: `${m.participant}@${SERVER_JID}` } : {}) },
          message: { conversation: m.text },
          messageTimestamp: Number(m.timestamp) || Math.floor(Date.now() / 1000) - 3600,
        } })),
      };
    });
    const payload = deflateSync(proto.HistorySync.encode({ syncType: type, conversations, progress: 100, chunkOrder: 1 }).finish());
    const plain = writeRandomPadMax16(proto.Message.encode({ protocolMessage: {
      type: proto.Message.ProtocolMessage.Type.HISTORY_SYNC_NOTIFICATION,
      historySyncNotification: { syncType: type, chunkOrder: 1, progress: 100, initialHistBootstrapInlinePayload: payload },
    } }).finish());
    const phone = this.contact(to);  // the attendant's phone (device 0), as a Signal peer
    const messageId = '3EB0' + randomBytes(8).toString('hex').toUpperCase();
    const targets = [...this.devices.values()].filter((d) => d.phone === to && !d.loggedOut);
    if (!targets.length) throw new Error('no device paired for ' + to);
    for (const d of targets) {
      const enc = await this.encryptTo(phone, d, plain);
      const node = { tag: 'message', attrs: { id: messageId, type: 'text', t: nowSeconds(), category: 'peer',
        from: `${to}@${SERVER_JID}` }, content: [{ tag: 'enc', attrs: { v: '2', type: enc.type }, content: enc.body }] };
      this.toDevice(d, node);
    }
    return { id: messageId };
  }

  // Sends the client its own message back as a device-sent copy with the same id (what a
  // companion sees when WhatsApp syncs its own sends again, e.g. after a reconnect).
  async echo(received) {
    const d = [...this.devices.values()].find((x) => x.phone === received.from && !x.loggedOut);
    if (!d) return;
    await this.deliverFromPhone({ contactPhone: received.to, to: d.phone, text: received.text, id: received.id });
  }

  async encryptTo(contact, d, plain) {
    const address = new libsignal.ProtocolAddress(`${d.phone}`, d.device);
    const existing = await contact.store.loadSession(address.toString());
    if (!existing || !existing.haveOpenSession?.()) {
      const [preKeyId, preKey] = d.preKeys.entries().next().value || [];
      if (!preKey) throw new Error('the device uploaded no prekeys');
      d.preKeys.delete(preKeyId);
      await new libsignal.SessionBuilder(contact.store, address).initOutgoing({
        registrationId: d.registrationId,
        identityKey: withType(d.identity),
        signedPreKey: { keyId: d.signedPreKey.keyId, publicKey: withType(d.signedPreKey.publicKey), signature: d.signedPreKey.signature },
        preKey: { keyId: preKeyId, publicKey: withType(preKey) },
      });
    }
    const { type, body } = await new libsignal.SessionCipher(contact.store, address).encrypt(plain);
    return { type: type === 3 ? 'pkmsg' : 'msg', body: Buffer.from(body, 'binary') };
  }

  // The client asks for the prekey bundles of contacts it is about to write to.
  contactBundles(keyNode) {
    const users = getBinaryNodeChildren(keyNode, 'user').map((u) => {
      const jid = u.attrs.jid;
      const contact = this.contact(this.phoneOfUser(userOf(jid)) || userOf(jid));
      const pk = contact.store.newPreKey();
      const s = contact.store.signedPreKey;
      const be = (n, size) => { const b = Buffer.alloc(size); b.writeUIntBE(n, 0, size); return b; };
      return { tag: 'user', attrs: { jid }, content: [
        { tag: 'registration', attrs: {}, content: be(contact.store.registrationId, 4) },
        { tag: 'type', attrs: {}, content: KEY_TYPE },
        { tag: 'identity', attrs: {}, content: withoutType(contact.store.identity.pubKey) },
        { tag: 'skey', attrs: {}, content: [
          { tag: 'id', attrs: {}, content: be(s.keyId, 3) },
          { tag: 'value', attrs: {}, content: withoutType(s.keyPair.pubKey) },
          { tag: 'signature', attrs: {}, content: Buffer.from(s.signature) },
        ] },
        { tag: 'key', attrs: {}, content: [
          { tag: 'id', attrs: {}, content: be(pk.keyId, 3) },
          { tag: 'value', attrs: {}, content: withoutType(pk.keyPair.pubKey) },
        ] },
      ] };
    });
    return { tag: 'list', attrs: {}, content: users };
  }

  // Answers a USync query: which numbers are on WhatsApp (and under which ID), and their devices.
  usyncResult(usync) {
    const list = getBinaryNodeChild(usync, 'list');
    const users = getBinaryNodeChildren(list, 'user').map((u) => {
      const contactNode = getBinaryNodeChild(u, 'contact');
      const content = [];
      let jid = u.attrs.jid;
      if (contactNode) {
        const asked = String(contactNode.content || '').replace(/\D/g, '');
        const found = this.resolvePhone(asked);
        jid = found ? `${found}@${SERVER_JID}` : `${asked}@${SERVER_JID}`;
        content.push({ tag: 'contact', attrs: { type: found ? 'in' : 'out' } });
      }
      if (jid) {
        const user = this.phoneOfUser(userOf(jid)) || userOf(jid);
        const own = [...this.devices.values()].filter((d) => d.phone === user && !d.loggedOut);
        const ids = [0, ...own.map((d) => d.device)];
        content.push({ tag: 'devices', attrs: {}, content: [{ tag: 'device-list', attrs: {},
          content: ids.map((id) => ({ tag: 'device', attrs: { id: String(id) } })) }] });
        if (!jid.endsWith('@lid')) content.push({ tag: 'lid', attrs: { val: `${this.lidOfUser(user)}@lid` } });
      }
      return { tag: 'user', attrs: { jid }, content };
    });
    return { tag: 'usync', attrs: {}, content: [
      { tag: 'result', attrs: {}, content: [] },
      { tag: 'list', attrs: {}, content: users },
    ] };
  }

  // Brazil: a 13-digit number (with the ninth digit) may belong to a 12-digit WhatsApp ID and the
  // other way round; the server knows which one exists.
  resolvePhone(asked) {
    const known = (p) => this.contacts.has(p) || [...this.devices.values()].some((d) => d.phone === p);
    if (known(asked)) return asked;
    if (asked.startsWith('55') && asked.length === 13 && asked[4] === '9') {
      const short = asked.slice(0, 4) + asked.slice(5);
      if (known(short)) return short;
    }
    if (asked.startsWith('55') && asked.length === 12) {
      const long = asked.slice(0, 4) + '9' + asked.slice(4);
      if (known(long)) return long;
    }
    return null;
  }

  // Registers a phone that exists on WhatsApp (so onWhatsApp finds it), e.g. a 12-digit BR ID.
  addContact(phone, { lid, pushName } = {}) {
    const c = this.contact(phone);
    if (lid) { c.lid = lid; this.lids.set(lid, phone); }
    if (pushName) c.pushName = pushName;
    return { phone };
  }

  async onMessage(conn, node) {
    const to = node.attrs.to;
    const id = node.attrs.id;
    const encNodes = [];
    const participants = getBinaryNodeChild(node, 'participants');
    if (participants) {
      for (const p of getBinaryNodeChildren(participants, 'to')) {
        const enc = getBinaryNodeChild(p, 'enc');
        if (enc) encNodes.push({ jid: p.attrs.jid, enc });
      }
    }
    const direct = getBinaryNodeChild(node, 'enc');
    if (direct) encNodes.push({ jid: to, enc: direct });
    const d = this.devices.get(conn.device);
    let text = null;
    let media = null;
    let quotedId = null;
    for (const { jid, enc } of encNodes) {
      const user = this.phoneOfUser(userOf(jid)) || userOf(jid);
      if (d && user === d.phone) continue;  // a copy for the attendant's own other devices
      const contact = this.contact(user);
      const address = new libsignal.ProtocolAddress(`${d.phone}`, d.device);
      const cipher = new libsignal.SessionCipher(contact.store, address);
      const body = Buffer.from(enc.content);
      const plain = enc.attrs.type === 'pkmsg'
        ? await cipher.decryptPreKeyWhisperMessage(body)
        : await cipher.decryptWhisperMessage(body);
      const unpadded = plain.subarray(0, plain.length - plain[plain.length - 1]);
      const msg = proto.Message.decode(unpadded);
      text = msg.conversation || msg.extendedTextMessage?.text || null;
      media = this.mediaOf(msg);
      quotedId = msg.extendedTextMessage?.contextInfo?.stanzaId || null;
      text = text ?? media?.caption ?? null;
    }
    // A message id the server already has from this device is acknowledged again but reaches the
    // contact only once, as on WhatsApp (a client's retry after a lost acknowledgement).
    const again = this.received.find((m) => m.id === id && m.from === d?.phone);
    if (again) again.repeats++;
    else {
      this.received.push({ id, from: d?.phone, to: this.phoneOfUser(userOf(to)) || userOf(to), text, media, quoted_id: quotedId, repeats: 0, at: Date.now() });
      if (this.echoSends) setTimeout(() => this.echo(this.received.at(-1)).catch((e) => this.log('echo: ' + e.message)), 100);
    }
    if (this.acksOff) return;  // a message WhatsApp never acknowledges
    this.sendNode(conn, { tag: 'ack', attrs: { class: 'message', id, from: to, t: nowSeconds() } });
    if (this.receiptsOff) return;
    setTimeout(() => {
      this.sendNode(conn, { tag: 'receipt', attrs: { id, from: to, t: nowSeconds() } });
      setTimeout(() => this.sendNode(conn, { tag: 'receipt', attrs: { id, from: to, type: 'read', t: nowSeconds() } }), 30);
    }, 30);
  }

  // A media message the client sent: fetched back from the media host and decrypted with the
  // keys the message carries (fails loudly when the client's encryption is wrong).
  mediaOf(msg) {
    const kinds = { imageMessage: 'image', videoMessage: 'video', audioMessage: 'audio', documentMessage: 'document' };
    const field = Object.keys(kinds).find((k) => msg[k]);
    if (!field) return null;
    const m = msg[field];
    const kind = field === 'audioMessage' && m.ptt ? 'ptt' : kinds[field];
    const file = this.media.get(m.directPath || m.url || '');
    if (!file) return { kind, error: 'not uploaded' };
    const plain = decryptMedia(file, kind, Buffer.from(m.mediaKey));
    return { kind, mime: m.mimetype, file_name: m.fileName || null, caption: m.caption || null,
      data: plain.toString('base64') };
  }

  id() {
    return `srv-${this.nextId++}`;
  }
}

function userOf(jid) {
  return String(jid).split('@')[0].split(':')[0];
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) - (b[i] || 0);
  return 0;
}
