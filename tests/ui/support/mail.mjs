// Real Dovecot and Postfix for the browser tests, started on 127.0.0.1 by the same scripts the
// C++ e-mail tests use (tests/support/mail/start-mail-servers.sh), all state in a temporary
// folder. Needs root and the packages of scripts/deps/apt-email.txt.
import {execFileSync} from 'node:child_process';
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const scripts = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                             '../../support/mail');

export class MailServers {
  static kPassword = 'secret-pass';
  static kAgent = 'agent@example.test';
  static kCustomer = 'customer@example.test';

  constructor() {
    // Ports apart per process, and apart from the C++ fixture's range (21000–24999).
    this.base = 26000 + (process.pid % 300) * 10;
    this.dir = mkdtempSync(path.join(tmpdir(), 'connector-ui-mail-'));
  }

  get imapsPort() { return this.base + 1; }
  get smtpMxPort() { return this.base + 4; }
  get smtpsPort() { return this.base + 6; }
  get caFile() { return path.join(this.dir, 'tls', 'ca.pem'); }

  start() {
    execFileSync(path.join(scripts, 'start-mail-servers.sh'), [this.dir, String(this.base)],
                 {stdio: ['ignore', 'pipe', 'pipe']});
  }

  stop() {
    try {
      execFileSync(path.join(scripts, 'stop-mail-servers.sh'), [this.dir], {stdio: 'ignore'});
    } finally {
      rmSync(this.dir, {recursive: true, force: true});
    }
  }

  // Hands a mail to Postfix's MX port (no auth), as a sender on the internet would.
  deliver(from, to, subject, body) {
    const id = `${Date.now()}.${Math.random().toString(36).slice(2)}@customer.test`;
    const raw = [`From: Cliente <${from}>`, `To: ${to}`, `Subject: ${subject}`,
                 `Date: ${new Date().toUTCString()}`, `Message-ID: <${id}>`,
                 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n');
    const file = path.join(this.dir, `outgoing-${id}.eml`);
    writeFileSync(file, raw);
    execFileSync('curl', ['--silent', '--show-error', `smtp://127.0.0.1:${this.smtpMxPort}`,
                          '--mail-from', from, '--mail-rcpt', to, '--upload-file', file]);
  }

  // The end of Postfix's and Dovecot's logs, for a failure message.
  logs() {
    const tail = (file) => {
      try {
        return readFileSync(path.join(this.dir, file), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        return '(none)';
      }
    };
    return `postfix:\n${tail('postfix/postfix.log')}\ndovecot:\n${tail('dovecot/dovecot.log')}`;
  }

  // The raw mails in a user's inbox (new and cur).
  mailbox(user) {
    const mails = [];
    for (const sub of ['new', 'cur']) {
      const folder = path.join(this.dir, 'mail', user, 'Maildir', sub);
      let names = [];
      try {
        names = readdirSync(folder);
      } catch {
        continue;  // not made until the first mail arrives
      }
      for (const name of names) mails.push(readFileSync(path.join(folder, name), 'utf8'));
    }
    return mails;
  }
}
