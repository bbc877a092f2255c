// Resident memory of idle WhatsApp sessions: N sessions through one bridge, beside N bridges with
// one session each, in the same run, against the WhatsApp test server on loopback.
//
//   node bench/whatsapp/memory.mjs [N]        (default N = 10)
//
// Prints one JSON line: base RSS of a bridge with no session, RSS with N sessions, the growth per
// session, and the total RSS of the one-process-per-session layout. Target: ≤ 10 MB per session.
// Not part of ctest: it takes a minute and measures, it does not judge.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '../..');
const N = Number(process.argv[2] || 10);

const rssOf = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer() {
  const child = spawn('node', [path.join(root, 'tests/plugins/whatsapp/server/main.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise((r) => createInterface({ input: child.stdout }).once('line', (l) => r(JSON.parse(l))));
  info.child = child;
  info.call = async (method, route, body) =>
    (await fetch(info.control_url + route, { method, body: body ? JSON.stringify(body) : undefined })).json();
  return info;
}

function startBridge() {
  const child = spawn('node', [path.join(root, 'plugins/whatsapp/bridge/bridge.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const handlers = [];
  let nextId = 1;
  const answers = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.id !== undefined) return answers.get(m.id)?.(m);
    if (m.event === 'state') child.stdin.write(JSON.stringify({ op: 'state_saved', account: m.account, seq: m.seq }) + '\n');
    for (const h of handlers) h(m);
  });
  return {
    child,
    on: (h) => handlers.push(h),
    request(op, fields = {}) {
      const id = nextId++;
      child.stdin.write(JSON.stringify({ id, op, ...fields }) + '\n');
      return new Promise((resolve) => answers.set(id, resolve));
    },
  };
}

// Pairs one account of `bridge` and resolves once it is connected.
function pairAccount(bridge, server, account, phone) {
  return new Promise((resolve) => {
    let scanned = false;
    bridge.on(async (m) => {
      if (m.account !== account) return;
      if (m.event === 'qr' && !scanned) {
        scanned = true;
        await server.call('POST', '/scan', { qr: m.qr, phone });
      }
      if (m.event === 'status' && m.state === 'connected') resolve();
    });
    bridge.request('start', { account, auth: null });
  });
}

async function configured(server) {
  const bridge = startBridge();
  await bridge.request('hello', { protocol: 1 });
  await bridge.request('configure', { ws_url: server.ws_url, test_root_key: server.root_key });
  return bridge;
}

const server = await startServer();

// One bridge, N sessions.
const shared = await configured(server);
await sleep(1000);
const base = rssOf(shared.child.pid);
for (let i = 0; i < N; i++) await pairAccount(shared, server, `acc${i}`, `55119100${String(i).padStart(5, '0')}`);
await sleep(3000);  // idle
const withSessions = rssOf(shared.child.pid);

// N bridges, one session each.
const singles = [];
for (let i = 0; i < N; i++) {
  const b = await configured(server);
  await pairAccount(b, server, 'solo', `55119200${String(i).padStart(5, '0')}`);
  singles.push(b);
}
await sleep(3000);
const separate = singles.reduce((sum, b) => sum + rssOf(b.child.pid), 0);

const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
console.log(JSON.stringify({
  sessions: N,
  one_bridge: { base_mb: mb(base), with_sessions_mb: mb(withSessions), per_session_mb: mb((withSessions - base) / N) },
  one_process_per_session: { total_mb: mb(separate), per_session_mb: mb(separate / N) },
  target_per_session_mb: 10,
}));
// The rows scripts/bench gathers into its table (the format of bench/BenchTable.hpp).
const row = (figure, value, reference, refValue, target) =>
  console.log(['TABLE', 'whatsapp', figure, value.toFixed(3), 'MB', reference, refValue.toFixed(3),
               (value / refValue).toFixed(3), target].join('\t'));
row('memory per idle session, one bridge (MB)', mb((withSessions - base) / N),
    'one process per session', mb(separate / N), '<= 10 MB');

for (const b of [shared, ...singles]) b.child.stdin.end();
server.child.kill();
process.exit(0);
