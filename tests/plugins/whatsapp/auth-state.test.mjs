// The bridge's auth state alone (node --test): what must be on disk before Baileys goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthState } from '../../../plugins/whatsapp/bridge/auth-state.mjs';

// An auth state whose writes wait for the test to confirm them, as the plugin would.
function recordedState() {
  const writes = [];
  const auth = new AuthState(null, (snapshot, seq) => writes.push({ snapshot, seq }));
  return { auth, writes };
}

const settledWithin = (promise, ms) =>
  Promise.race([promise.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

test('new pre-keys are confirmed on disk before Baileys may upload them', async () => {
  const { auth, writes } = recordedState();
  const stored = auth.state.keys.set({ 'pre-key': { 7: { public: Buffer.from('p'), private: Buffer.from('k') } } });
  assert.equal(await settledWithin(stored, 300), false, 'set() returned before the write was confirmed');
  assert.equal(writes.length, 1);
  assert.match(writes[0].snapshot, /"pre-key"/);
  auth.saved(writes[0].seq);
  assert.equal(await settledWithin(stored, 1000), true, 'set() still waits after the confirmation');
});

test('session updates and removed pre-keys do not wait for the disk', async () => {
  const { auth, writes } = recordedState();
  assert.equal(await settledWithin(auth.state.keys.set({ session: { a: Buffer.from('s') } }), 300), true);
  assert.equal(await settledWithin(auth.state.keys.set({ 'pre-key': { 7: null } }), 300), true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(writes.length, 1, 'the two changes were not coalesced into one write');
});
