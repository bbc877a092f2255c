// The WhatsApp test server (tests/plugins/whatsapp/server/main.mjs) as a child process, with its
// HTTP control interface playing the attendant's phone and the contacts. 127.0.0.1 only.
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                               '../../plugins/whatsapp/server');

export class WhatsAppServer {
  // refs: how many QR refs each pairing offers before the client gives up.
  constructor({refs = 3} = {}) {
    this.refs = refs;
    this.child = null;
    this.log = '';
  }

  async start() {
    const child = spawn(process.execPath, ['main.mjs', '--refs', String(this.refs)],
                        {cwd: serverDir, stdio: ['pipe', 'pipe', 'pipe']});
    this.child = child;
    child.stderr.on('data', (chunk) => { this.log += chunk; });
    const info = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`test server did not start:\n${this.log}`)),
                               20000);
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (!line || !out.includes('\n')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
      child.on('exit', () => reject(new Error(`test server exited:\n${this.log}`)));
    });
    this.wsUrl = info.ws_url;
    this.controlUrl = info.control_url;
    this.rootKey = info.root_key;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.on('exit', resolve));
    this.child.stdin.end();  // the server stops when its stdin closes
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  // The host's plugins section for the WhatsApp plugin against this server.
  pluginYaml(pluginDir, {qrTimeoutMs = 0} = {}) {
    return ['  whatsapp:',
            `    library: ${JSON.stringify(path.join(pluginDir, 'libconnector_whatsapp.so'))}`,
            '    settings:',
            `      ws_url: ${JSON.stringify(this.wsUrl)}`,
            `      test_root_key: ${JSON.stringify(this.rootKey)}`,
            qrTimeoutMs > 0 ? `      qr_timeout_ms: ${qrTimeoutMs}` : ''].join('\n');
  }

  async call(method, route, body) {
    const response = await fetch(this.controlUrl + route, {
      method, headers: {'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${route}: ${json.error}`);
    return json;
  }

  scan(qr, phone) { return this.call('POST', '/scan', {qr, phone}); }
  send(message) { return this.call('POST', '/send', message); }
  history(sync) { return this.call('POST', '/history', sync); }
  received() { return this.call('GET', '/received'); }
}
