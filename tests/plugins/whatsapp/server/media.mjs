// The test server's media host: HTTPS on 127.0.0.1 with a certificate of its own (made with the
// openssl tool at start, in a temporary folder), holding media encrypted as WhatsApp does.
//
// WhatsApp media encryption, as the real protocol (and Baileys) does it, written here on its own so
// that the client's side is tested against an independent implementation:
//   keys   = HKDF-SHA256(mediaKey, salt = none, info = "WhatsApp <Kind> Keys", 112 bytes)
//   iv     = keys[0..16], cipherKey = keys[16..48], macKey = keys[48..80]
//   file   = AES-256-CBC(cipherKey, iv, plain) ‖ HMAC-SHA256(macKey, iv ‖ enc)[0..10]
//   fileSha256 = SHA-256(plain), fileEncSha256 = SHA-256(file)
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import https from 'node:https';

const KIND_INFO = { image: 'Image', video: 'Video', audio: 'Audio', ptt: 'Audio', document: 'Document', sticker: 'Image' };

export function mediaKeys(mediaKey, kind) {
  const info = `WhatsApp ${KIND_INFO[kind]} Keys`;
  const okm = Buffer.from(hkdfSync('sha256', mediaKey, Buffer.alloc(0), info, 112));
  return { iv: okm.subarray(0, 16), cipherKey: okm.subarray(16, 48), macKey: okm.subarray(48, 80) };
}

export function encryptMedia(plain, kind, mediaKey = randomBytes(32)) {
  const { iv, cipherKey, macKey } = mediaKeys(mediaKey, kind);
  const cipher = createCipheriv('aes-256-cbc', cipherKey, iv);
  const enc = Buffer.concat([cipher.update(plain), cipher.final()]);
  const mac = createHmac('sha256', macKey).update(Buffer.concat([iv, enc])).digest().subarray(0, 10);
  const file = Buffer.concat([enc, mac]);
  return {
    mediaKey, file,
    fileSha256: createHash('sha256').update(plain).digest(),
    fileEncSha256: createHash('sha256').update(file).digest(),
  };
}

// Checks the MAC and decrypts; throws when the file was not encrypted with `mediaKey` for `kind`.
export function decryptMedia(file, kind, mediaKey) {
  const { iv, cipherKey, macKey } = mediaKeys(mediaKey, kind);
  const enc = file.subarray(0, file.length - 10);
  const mac = createHmac('sha256', macKey).update(Buffer.concat([iv, enc])).digest().subarray(0, 10);
  if (!mac.equals(file.subarray(file.length - 10))) throw new Error('media MAC mismatch');
  const decipher = createDecipheriv('aes-256-cbc', cipherKey, iv);
  return Buffer.concat([decipher.update(enc), decipher.final()]);
}

export class MediaHost {
  constructor(log = () => {}) {
    this.log = log;
    this.files = new Map();  // direct path → encrypted bytes
    this.auth = randomBytes(16).toString('hex');
  }

  async listen() {
    this.dir = mkdtempSync(path.join(tmpdir(), 'wa-media-'));
    const key = path.join(this.dir, 'key.pem');
    this.certFile = path.join(this.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
      '-out', this.certFile, '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    this.server = https.createServer({ key: readFileSync(key), cert: readFileSync(this.certFile) },
      (req, res) => this.onRequest(req, res));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${this.server.address().port}`;
    return this.host;
  }

  close() {
    this.server?.closeAllConnections?.();
    this.server?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  // Stores an encrypted file; returns where a client downloads it.
  put(file) {
    const directPath = `/v/t62.7118-24/${randomBytes(12).toString('hex')}.enc?ccb=11-4&oh=${randomBytes(8).toString('hex')}`;
    this.files.set(directPath.split('?')[0], file);
    return { directPath, url: `https://${this.host}${directPath}&mms3=true` };
  }

  get(directPathOrUrl) {
    const p = directPathOrUrl.startsWith('https://') ? new URL(directPathOrUrl).pathname : directPathOrUrl.split('?')[0];
    return this.files.get(p);
  }

  onRequest(req, res) {
    const url = new URL(req.url, `https://${this.host}`);
    if (req.method === 'GET') {
      const file = this.files.get(url.pathname);
      if (!file) { res.writeHead(404); return res.end(); }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.length });
      return res.end(file);
    }
    if (req.method === 'POST' && url.pathname.startsWith('/mms/')) {
      // An upload, as the client does it: /mms/<type>/<fileEncSha256 base64url>?auth=…&token=…
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (url.searchParams.get('auth') !== this.auth) {
          res.writeHead(401, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: 'bad auth' }));
        }
        const expected = url.pathname.split('/').pop();
        const actual = createHash('sha256').update(body).digest('base64url');
        if (expected.replace(/=+$/, '') !== actual) {
          res.writeHead(400, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: 'hash mismatch' }));
        }
        const { directPath, url: mediaUrl } = this.put(body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: mediaUrl, direct_path: directPath }));
      });
      return;
    }
    res.writeHead(404);
    res.end();
  }
}
