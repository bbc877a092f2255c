// Runs the WhatsApp test server with its HTTP control interface, both on 127.0.0.1.
//
//   node main.mjs [--ws-port N] [--control-port N] [--refs N]
//
// Stops on SIGTERM or SIGINT, or when its stdin ends if that is a pipe (a test that started it).
//
// Prints one JSON line on stdout once listening:
//   {"ws_url":"ws://127.0.0.1:P/ws/chat","control_url":"http://127.0.0.1:Q","root_key":"<b64>",
//    "media_ca":"<path of the media host's certificate (PEM), for the client's test trust setting>"}
//
// Control interface (JSON bodies and answers):
//   GET  /info                      devices, their connection state, pending QR refs, root key
//   POST /scan     {qr, phone?, lid?}        the phone scans a QR → pair-success, then 515
//   POST /send     {from, to, text, push_name?, lid?, hide_phone?, id?, group?,
//                   media? {kind: image|video|audio|voice_note|document, data (base64), mime, file_name?},
//                   location? {latitude, longitude, name?}, contact_card? {name, vcard},
//                   quoted? {id, text}, from_phone?}
//                                            from_phone: the attendant typed it on the phone to
//                                            `from`; it reaches the device as a device-sent copy
//                                            phone `from` writes to attendant phone `to` (in
//                                            group `group` when given); media goes through the
//                                            HTTPS media host, encrypted as WhatsApp does
//   POST /history  {to, chats: [{with, messages: [{text, id?, from_me?, timestamp?}]}], sync_type?}
//                                            the attendant's phone `to` sends its linked devices
//                                            a history sync of those chats (inline payload;
//                                            sync_type INITIAL_BOOTSTRAP by default, or RECENT)
//   POST /contact  {phone, lid?, push_name?} a number that exists on WhatsApp
//   GET  /received                           messages the clients sent (decrypted; media fetched
//                                            back from the media host and decrypted, base64);
//                                            one entry per message id, `repeats` counting the
//                                            times the same id came again
//   GET  /receipts                           receipts the clients sent
//   POST /kick     {phone, code}             ends the session: 401, 440, 515, 503..., 0 = drop
//   POST /min-version {version:[a,b,c]|null} older clients are refused with 405
//   POST /receipts-off {off:true}            stop answering messages with receipts
//   POST /echo-sends {on:true}               send every client message back as a device-sent copy
//   POST /acks-off {off:true}                stop acknowledging the clients' messages at all
//   POST /handshake-delay {ms}               answer every client hello only after ms
//   POST /refuse {on:true}                   close every new connection at once (GET /info's
//                                            refused counts them), as a server out of reach
//   POST /contact/new-session {phone}       the contact's phone forgets its Signal sessions (as
//                                            after a reinstall): its next message starts a new
//                                            one, and the client closes the old
//   POST /opening-peak/reset                 GET /info's opening_peak: the most connections
//                                            opening at once (accepted, not yet logged in,
//                                            refused or waiting for a scan) since this reset
import http from 'node:http';
import { fstatSync } from 'node:fs';

// stdout carries only the hello line, and the test that started us stops reading it after that:
// libsignal's console.log chatter ("Closing open session in favor of incoming prekey bundle", on
// every new session) written there would fail with EPIPE and end the server mid-test.
for (const level of ['log', 'info', 'debug', 'warn']) console[level] = console.error;
import { WhatsAppTestServer } from './server.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const server = new WhatsAppTestServer({
  refs: arg('--refs', 3),
  log: (line) => process.stderr.write(line + '\n'),
});
const wsPort = await server.listen(arg('--ws-port', 0));

const routes = {
  'GET /info': () => server.info(),
  'POST /scan': (b) => server.scan(b.qr, { phone: b.phone, lid: b.lid }),
  'POST /send': (b) => server.deliver({
    from: b.from, to: b.to, text: b.text, pushName: b.push_name, lid: b.lid, hidePhone: !!b.hide_phone, id: b.id,
    media: b.media, location: b.location, contactCard: b.contact_card, quoted: b.quoted, group: b.group,
    fromPhone: !!b.from_phone,
  }),
  'POST /history': (b) => server.history({ to: b.to, chats: b.chats, syncType: b.sync_type }),
  'POST /contact': (b) => server.addContact(b.phone, { lid: b.lid, pushName: b.push_name }),
  'GET /received': () => server.received,
  'GET /receipts': () => server.receipts,
  'POST /kick': (b) => ({ kicked: server.kick(String(b.phone), Number(b.code)) }),
  'POST /min-version': (b) => { server.minVersion = b.version || null; return {}; },
  'POST /receipts-off': (b) => { server.receiptsOff = !!b.off; return {}; },
  'POST /echo-sends': (b) => { server.echoSends = !!b.on; return {}; },
  'POST /acks-off': (b) => { server.acksOff = !!b.off; return {}; },
  'POST /handshake-delay': (b) => { server.handshakeDelayMs = Number(b.ms) || 0; return {}; },
  'POST /refuse': (b) => { server.refusing = !!b.on; return {}; },
  'POST /contact/new-session': ({ phone }) => { server.contact(phone).store.sessions.clear(); return {}; },
  'POST /opening-peak/reset': () => { server.openingPeak = server.opening; return {}; },
};

const control = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', async () => {
    const route = routes[`${req.method} ${req.url.split('?')[0]}`];
    const answer = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (!route) return answer(404, { error: 'no such route' });
    try {
      answer(200, (await route(body ? JSON.parse(body) : {})) ?? {});
    } catch (e) {
      answer(400, { error: e.message });
    }
  });
});
control.listen(arg('--control-port', 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({
    ws_url: `ws://127.0.0.1:${wsPort}/ws/chat`,
    control_url: `http://127.0.0.1:${control.address().port}`,
    root_key: server.info().root_key,
    media_ca: server.info().media_ca,
  }) + '\n');
});

const stop = async () => {
  control.close();
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started by a test with a pipe on stdin: its end means the test is gone. Started from a shell
// (a terminal, or in the background with stdin at /dev/null) it runs until it is signalled.
const stdin = fstatSync(0);
if (stdin.isFIFO() || stdin.isSocket()) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}
