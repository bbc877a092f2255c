// The receipt gate alone (node --test): which frames it holds back, and until when.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiptGate } from '../../../plugins/whatsapp/bridge/receipt-gate.mjs';

const quiet = { level: 'debug', child() { return this; }, trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

// A gate on a socket that records what went out; `receipt(type, ids)` plays Baileys logging a
// receipt and writing it.
function gated() {
  const sent = [];
  const receipted = [];
  const socket = { send: (data) => sent.push(data) };
  const gate = new ReceiptGate({ onReceipt: (ids) => receipted.push(...ids) });
  gate.attach(socket);
  const logger = gate.logger(quiet);
  const receipt = (type, ids) => {
    logger.debug({ attrs: type ? { type } : {}, messageIds: ids }, 'sending receipt for messages');
    socket.send(`receipt ${type || 'delivery'} ${ids.join(',')}`);
  };
  return { gate, socket, sent, receipted, receipt };
}

test('a delivery receipt, and every frame after it, waits until its message is settled', () => {
  const { gate, socket, sent, receipted, receipt } = gated();
  receipt(undefined, ['M1']);
  socket.send('query');
  assert.deepEqual(sent, []);
  assert.deepEqual(receipted, ['M1']);
  gate.settled('M1');
  assert.deepEqual(sent, ['receipt delivery M1', 'query']);
});

test('receipts that promise the host nothing go out at once', () => {
  for (const type of ['read', 'retry', 'peer_msg', 'hist_sync']) {
    const { socket, sent, receipted, receipt } = gated();
    receipt(type, ['N1']);
    socket.send('query');
    assert.deepEqual(sent, [`receipt ${type} N1`, 'query'], type);
    assert.deepEqual(receipted, [], type);
  }
});

test('a closed connection sends nothing it held', () => {
  const { gate, sent, receipt } = gated();
  receipt(undefined, ['M2']);
  gate.close();
  gate.settled('M2');
  assert.deepEqual(sent, []);
});
