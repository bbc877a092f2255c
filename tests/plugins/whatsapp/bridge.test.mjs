// The bridge alone, through its line protocol, against the WhatsApp test server (node --test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const bridgeScript = path.join(here, '../../../plugins/whatsapp/bridge/bridge.mjs');
const serverScript = path.join(here, 'server/main.mjs');

function startServer() {
  const child = spawn('node', [serverScript], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve) => createInterface({ input: child.stdout }).once('line', (line) => {
    const info = JSON.parse(line);
    info.child = child;
    info.call = async (method, route, body) => {
      const res = await fetch(info.control_url + route, { method, body: body ? JSON.stringify(body) : undefined });
      return res.json();
    };
    resolve(info);
  }));
}

// A bridge with a recorder of its events; answers state writes like the plugin does, and settles
// each message as the plugin does once the host stored it (unless `settle` is false).
// `env`: extra environment; `stderr`: collect the bridge's stderr in `bridge.stderr`.
function startBridge({ settle = true, env = {}, stderr = false } = {}) {
  const child = spawn('node', [bridgeScript], {
    stdio: ['pipe', 'pipe', stderr ? 'pipe' : 'inherit'], env: { ...process.env, ...env } });
  if (stderr) child.stderr.on('data', (d) => { bridge.stderr += d; });
  const events = [];
  const waiters = [];
  const answers = new Map();
  let nextId = 1;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.id !== undefined) return answers.get(m.id)?.(m);
    if (m.event === 'state') child.stdin.write(JSON.stringify({ op: 'state_saved', account: m.account, seq: m.seq }) + '\n');
    if (m.event === 'message' && settle) bridge.settle(m.account, m.message.external_id);
    events.push(m);
    for (const w of [...waiters]) if (w.match(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const bridge = {
    child,
    events,
    stderr: '',
    settle(account, externalId) {
      child.stdin.write(JSON.stringify({ op: 'settled', account, external_id: externalId }) + '\n');
    },
    request(op, fields = {}) {
      const id = nextId++;
      child.stdin.write(JSON.stringify({ id, op, ...fields }) + '\n');
      return new Promise((resolve) => answers.set(id, resolve));
    },
    waitFor(match, ms = 20000) {
      const found = events.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error('timed out waiting for an event')), ms).unref();
      });
    },
  };
  return bridge;
}

// Starts account 'a' on the bridge and lets the phone `phone` scan its first QR; answers the
// `connected` status.
async function pair(bridge, server, phone) {
  await bridge.request('hello', { protocol: 1 });
  await bridge.request('configure', { ws_url: server.ws_url, test_root_key: server.root_key });
  await bridge.request('start', { account: 'a', auth: null });
  const qr = await bridge.waitFor((e) => e.event === 'qr');
  await server.call('POST', '/scan', { qr: qr.qr, phone });
  return bridge.waitFor((e) => e.event === 'status' && e.state === 'connected');
}

// libsignal prints whole sessions, keys included, with console.info and console.warn: none of
// it may reach stdout (the protocol) or stderr (the host's journal); only its words, without the
// objects, reach the plugin as a debug log line.
test('library console output never carries key material out of the bridge', async () => {
  const preload = path.join(here, 'fixtures/close-session-on-signal.mjs');
  const child = spawn('node', ['--import', preload, bridgeScript], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const lines = () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const until = async (check) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
    return check();
  };
  try {
    child.stdin.write(JSON.stringify({ id: 1, op: 'hello', protocol: 1 }) + '\n');
    assert.ok(await until(() => lines().some((l) => l.id === 1)), 'no answer to hello: ' + stderr);
    child.kill('SIGUSR2');
    const logged = () => lines().filter((l) => l.event === 'log' && /library/.test(l.text));
    assert.ok(await until(() => logged().length >= 4), 'the library output was not logged: ' + stdout);
    assert.ok(logged().some((l) => /Closing session:/.test(l.text) && l.level === 'debug'), stdout);
    await new Promise((r) => setTimeout(r, 200));
    for (const secret of ['privKey', 'rootKey', 'pubKey', '<Buffer', '01 01 01', 'AQEBAQEB']) {
      assert.ok(!stdout.includes(secret), `stdout carries ${secret}: ${stdout}`);
      assert.ok(!stderr.includes(secret), `stderr carries ${secret}: ${stderr}`);
    }
    assert.equal(stderr, '');
  } finally {
    child.stdin.end();
  }
});

test('hello refuses another protocol version and names both', async () => {
  const bridge = startBridge();
  const answer = await bridge.request('hello', { protocol: 99 });
  assert.equal(answer.ok, false);
  assert.match(answer.error, /99.*1/);
  assert.equal((await bridge.request('hello', { protocol: 1 })).ok, true);
  bridge.child.stdin.end();
});

test('pairs through the QR, stores state before restarting, and receives and sends text', async () => {
  const server = await startServer();
  const bridge = startBridge();
  try {
    await bridge.request('hello', { protocol: 1 });
    await bridge.request('configure', { ws_url: server.ws_url, test_root_key: server.root_key });
    await bridge.request('start', { account: 'a', auth: null });
    const qr = await bridge.waitFor((e) => e.event === 'qr');
    assert.ok(qr.expires_at > Date.now());
    await server.call('POST', '/scan', { qr: qr.qr, phone: '5511900000002' });
    const connected = await bridge.waitFor((e) => e.event === 'status' && e.state === 'connected');
    assert.equal(connected.phone, '+5511900000002');
    const states = bridge.events.filter((e) => e.event === 'state');
    assert.ok(states.length > 0 && JSON.parse(states.at(-1).auth).creds.me, 'paired creds were handed over');

    await server.call('POST', '/send', { from: '5511911112222', to: '5511900000002', text: 'oi' });
    const inbound = await bridge.waitFor((e) => e.event === 'message');
    assert.equal(inbound.message.text, 'oi');
    assert.equal(inbound.message.from, '+5511911112222');
    assert.equal(inbound.message.direction, 'inbound');

    const sent = await bridge.request('send', { account: 'a', to: '+5511911112222', text: 'olá' });
    assert.equal(sent.ok, true, sent.error);
    await bridge.waitFor((e) => e.event === 'delivery' && e.external_id === sent.external_id);
    const received = await server.call('GET', '/received');
    assert.deepEqual(received.map((m) => m.text), ['olá']);
    // Our own send is not reported back as a new message (no fromMe echo duplicate).
    assert.equal(bridge.events.filter((e) => e.event === 'message' && e.message.external_id === sent.external_id).length, 0);
  } finally {
    bridge.child.stdin.end();
    server.child.kill();
  }
});

// WhatsApp must not hear of a message before the host stored it: the receipt waits for the
// plugin's `settled`, and so does the Signal state that decrypted the message.
test('a message is receipted, and its state handed over, only once the plugin settled it', async () => {
  const server = await startServer();
  const bridge = startBridge({ settle: false });
  try {
    await pair(bridge, server, '5511900000003');
    const unreceipted = async () => (await server.call('GET', '/info')).devices[0].unreceipted;
    const states = () => bridge.events.filter((e) => e.event === 'state').length;

    const { id } = await server.call('POST', '/send', { from: '5511911113333', to: '5511900000003', text: 'guarde' });
    await bridge.waitFor((e) => e.event === 'message' && e.message.external_id === id, 30000);
    const statesBefore = states();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(await unreceipted(), 1, 'the receipt went out before the message was settled');
    assert.equal(states(), statesBefore, 'a state was handed over before the message was settled');

    bridge.settle('a', id);
    for (let i = 0; i < 100 && (await unreceipted()) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await unreceipted(), 0, 'the receipt did not go out once the message was settled');
    assert.ok(states() > statesBefore, 'the state that decrypted the message was not handed over');
  } finally {
    bridge.child.stdin.end();
    server.child.kill();
  }
});

// The chats' past that the phone sends after a pairing reaches the plugin as history messages,
// with their own times and directions, and the burst is summed up once.
test('a history sync after the pairing hands over every past message, marked as history', async () => {
  const server = await startServer();
  const bridge = startBridge();
  try {
    await pair(bridge, server, '5511900000005');
    const past = Math.floor(Date.now() / 1000) - 2 * 86400;
    await server.call('POST', '/history', { to: '5511900000005', chats: [
      { with: '5511911114444', messages: [
        { id: 'HIST-1', text: 'pedido de ontem', timestamp: past },
        { id: 'HIST-2', text: 'respondido no telefone', from_me: true, timestamp: past + 60 },
      ] },
      { with: '5511911115555', messages: [{ id: 'HIST-3', text: 'outra conversa antiga', timestamp: past + 120 }] },
      // A status update (story) is no conversation: not handed over.
      { with: 'status@broadcast', messages: [{ id: 'HIST-S', text: 'meu status', participant: '5511911115555', timestamp: past }] },
    ] });
    const backlog = await bridge.waitFor((e) => e.event === 'backlog', 40000);
    const messages = bridge.events.filter((e) => e.event === 'message').map((e) => e.message);
    const byId = Object.fromEntries(messages.map((m) => [m.external_id, m]));
    assert.deepEqual(Object.keys(byId).sort(), ['HIST-1', 'HIST-2', 'HIST-3']);
    assert.equal(backlog.count, 3);
    for (const m of messages) assert.equal(m.details.history, true, JSON.stringify(m));
    assert.equal(byId['HIST-1'].direction, 'inbound');
    assert.equal(byId['HIST-1'].from, '+5511911114444');
    assert.equal(byId['HIST-1'].timestamp, past * 1000);
    assert.equal(byId['HIST-2'].direction, 'outbound');
    assert.equal(byId['HIST-2'].to, '+5511911114444');
    assert.equal(byId['HIST-3'].text, 'outra conversa antiga');
  } finally {
    bridge.child.stdin.end();
    server.child.kill();
  }
});

// Baileys logs a history notification whole at level info, payload included (the chats' past,
// or the key to download it): withheld even when the library's log is on for diagnosis.
test('the library log never carries a history payload', async () => {
  const server = await startServer();
  const bridge = startBridge({ env: { WA_BRIDGE_LOG: 'info' }, stderr: true });
  try {
    await pair(bridge, server, '5511900000006');
    await server.call('POST', '/history', { to: '5511900000006', chats: [
      { with: '5511911116666', messages: [{ id: 'HIST-L', text: 'conversa reservada' }] }] });
    await bridge.waitFor((e) => e.event === 'backlog', 40000);
    assert.match(bridge.stderr, /got history notification/);
    assert.match(bridge.stderr, /"histNotification":"\[withheld\]"/);
    assert.doesNotMatch(bridge.stderr, /initialHistBootstrapInlinePayload/);
  } finally {
    bridge.child.stdin.end();
    server.child.kill();
  }
});

test('a logout waits for the confirmed wipe of the state, not for the flush timeout', async () => {
  const server = await startServer();
  const bridge = startBridge();
  try {
    await pair(bridge, server, '5511900000003');

    const stopped = await bridge.request('stop', { account: 'a', logout: true });
    assert.equal(stopped.ok, true, stopped.error);
    const last = bridge.events.filter((e) => e.event === 'state').at(-1);
    assert.equal(last.auth, null, 'the state was not wiped');
    // The answer came after the wipe was confirmed: no write went unconfirmed on the way.
    const unconfirmed = bridge.events.filter((e) => e.event === 'log' && /did not confirm/.test(e.text));
    assert.deepEqual(unconfirmed, []);
    const info = await server.call('GET', '/info');
    assert.equal(info.devices.find((d) => d.phone === '5511900000003').logged_out, true);
  } finally {
    bridge.child.stdin.end();
    server.child.kill();
  }
});
