// Pairing by QR code against a host whose loopback "phone" scans each QR after 1.5 s, and
// signing in by pasting an API token instead of opening a login link. The browser here announces
// English: the screen still starts in Brazilian Portuguese, the specification's language.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {HostProcess} from './support/host.mjs';
import {launchBrowser, shoot} from './support/browser.mjs';
import {addLoopbackAccount, fillLoopback, decodeQr} from './support/screen.mjs';

const host = new HostProcess({qr_ttl_ms: 30000, qr_pairs_after_ms: 1500});
let browser;
let page;

before(async () => {
  await host.start();
  browser = await launchBrowser({locale: 'en-US'});
  page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
});

after(async () => {
  if (browser) await browser.close();
  await host.cleanup();
});

test('Brazilian Portuguese is the default even when the browser asks for English', async () => {
  await page.goto(host.url);
  assert.equal(await page.evaluate(() => navigator.language), 'en-US');
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'pt-BR');
  assert.equal(await page.getByLabel('Idioma').inputValue(), 'pt-BR');
});

test('a wrong pasted token is refused and shows no data', async () => {
  await page.goto(host.url);
  await page.getByLabel('Token de API').fill('not-a-token');
  await page.getByRole('button', {name: 'Entrar'}).click();
  await page.getByTestId('login-error').filter({hasText: 'Token não aceito'}).waitFor();
  assert.equal(await page.locator('article.card').count(), 0);
});

test('a pasted API token signs in', async () => {
  const code = new URL(host.loginLink).hash.replace('#login=', '');
  const response = await fetch(`${host.url}/api/v1/auth/login-link`, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({code}),
  });
  assert.equal(response.status, 201);
  const {token} = await response.json();
  await page.getByLabel('Token de API').fill(token);
  await page.getByRole('button', {name: 'Entrar'}).click();
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
  await shoot(page, '20-token-signed-in');
});

test('scanning the QR connects the account', async () => {
  const card = await addLoopbackAccount(page);
  await fillLoopback(card, {method: 'qr', account: 'diego'});
  await card.getByTestId('qr').and(page.locator('[src^="blob:"]')).waitFor();
  assert.match(await decodeQr(card, '21-qr-before-scan'), /^loopback:diego:\d+$/);
  await card.getByTestId('status').filter({hasText: 'Conectado como diego'}).waitFor();
  assert.equal(await card.getByTestId('qr').count(), 0, 'the QR goes away once connected');
  await card.getByRole('button', {name: 'Desconectar'}).waitFor();
  await shoot(page, '22-paired');
});

test('signing out forgets the token and shows no data', async () => {
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('connector.token')), null);
  assert.equal(await page.locator('article.card').count(), 0);
  await page.reload();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});
