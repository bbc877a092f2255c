// A channel the screen has never seen: its card, form, OAuth button, pairing code and first-sync
// progress come only from the plugin's self-description and live events. The host's plugin list
// and event stream are replaced in the browser (Playwright routes), so a plugin with OAuth,
// pairing codes and progress can be shown without one being built; sign-in and the rest are the
// real host's.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {HostProcess} from './support/host.mjs';
import {launchBrowser, shoot} from './support/browser.mjs';

const host = new HostProcess({});
let browser;
let page;
let socket;
let oauthAnswer;

const label = (en, pt) => ({en, 'pt-BR': pt});
const kPlugin = {
  id: 'novo-canal', state: 'loaded', code: '', reason: '',
  descriptor: {
    id: 'novo-canal', name: label('New channel', 'Canal novo'), version: '0.0.1',
    capabilities: ['oauth', 'pairing_code', 'qr', 'send', 'receive'],
    connect_fields: [
      {name: 'provider', type: 'select', label: label('Provider', 'Provedor'), required: true,
       default: 'gmail', choices: [{value: 'gmail', label: label('Gmail', 'Gmail')},
                                   {value: 'outlook', label: label('Outlook', 'Outlook')}]},
      {name: 'address', type: 'email', label: label('E-mail address', 'Endereço de e-mail'),
       required: true},
      {name: 'phone', type: 'text', label: label('Phone number', 'Número de telefone'),
       required: false},
    ],
  },
};
const kAccount = {
  id: 'acc_novo', plugin: 'novo-canal', label: '', state: 'disconnected', account: '',
  detail: '', auto_linked_cases: 4, qr: null,
};

before(async () => {
  await host.start();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.route('**/api/v1/plugins', (route) =>
    route.fulfill({json: {items: [kPlugin]}}));
  await page.route('**/api/v1/accounts', (route) =>
    route.request().method() === 'GET' ? route.fulfill({json: {items: [kAccount]}}) : route.fallback());
  await page.route('**/api/v1/accounts/acc_novo/log*', (route) =>
    route.fulfill({json: {items: [], next_before: null}}));
  await page.route('**/api/v1/accounts/acc_novo/oauth/start', (route) => route.fulfill(oauthAnswer));
  await page.routeWebSocket('**/api/v1/events', (ws) => {
    socket = ws;
    ws.send(JSON.stringify({type: 'hello', attendant_id: 'x', role: 'admin'}));
  });
});

after(async () => {
  if (browser) await browser.close();
  await host.cleanup();
});

test('a new plugin gets a card and a form from its description alone', async () => {
  await page.goto(host.loginLink);
  const card = page.locator('article.card[data-account="acc_novo"]');
  await card.waitFor();
  await page.getByRole('heading', {name: 'Canal novo', exact: true}).waitFor();
  assert.equal(await card.getByLabel(/Provedor/).inputValue(), 'gmail');
  await card.getByLabel(/Endereço de e-mail/).waitFor();
  assert.match(await card.getByTestId('linked-count').textContent(), /4 casos vinculados/);
  // The optional phone number is the pairing-code alternative, folded away until asked for.
  await card.getByText('Parear com código em vez do QR code').click();
  await card.getByLabel('Número de telefone').waitFor();
  await shoot(page, '30-new-plugin');
});

test('"Connect with Google/Microsoft" follows the provider and explains a missing route', async () => {
  const card = page.locator('article.card[data-account="acc_novo"]');
  const button = card.getByRole('button', {name: 'Conectar com Google'});
  await button.waitFor();
  await card.getByLabel(/Provedor/).selectOption('outlook');
  await card.getByRole('button', {name: 'Conectar com Microsoft'}).waitFor();

  oauthAnswer = {status: 404, json: {error: {code: 'not_found', message: 'no such resource'}}};
  await card.getByRole('button', {name: 'Conectar com Microsoft'}).click();
  await card.getByTestId('form-error')
      .filter({hasText: 'O login seguro (OAuth) ainda não está disponível'}).waitFor();
  await shoot(page, '31-oauth-unavailable');

  const target = `${host.url}/oauth-test-landing`;
  oauthAnswer = {status: 200, json: {authorization_url: target}};
  const popup = page.context().waitForEvent('page');
  await card.getByRole('button', {name: 'Conectar com Microsoft'}).click();
  const opened = await popup;
  assert.equal(opened.url(), target);
  await opened.close();
  const link = card.getByRole('link', {name: 'Abrir a página de login'});
  assert.equal(await link.getAttribute('href'), target);
});

test('a pairing code and the first sync progress are shown as they arrive', async () => {
  const card = page.locator('article.card[data-account="acc_novo"]');
  socket.send(JSON.stringify({type: 'account.status', account_id: 'acc_novo', state: 'connecting',
                              account: '', detail: ''}));
  socket.send(JSON.stringify({type: 'account.pairing_code', account_id: 'acc_novo',
                              code: 'ABCD-1234', expires_at: Date.now() + 60000}));
  await card.getByTestId('pairing-code').filter({hasText: 'ABCD-1234'}).waitFor();
  socket.send(JSON.stringify({type: 'account.status', account_id: 'acc_novo', state: 'connected',
                              account: 'ana@empresa.com', detail: ''}));
  socket.send(JSON.stringify({type: 'account.progress', account_id: 'acc_novo', phase: 'INBOX',
                              done: 3, total: 10}));
  await card.getByTestId('status').filter({hasText: 'Conectado como ana@empresa.com'}).waitFor();
  await card.getByText('INBOX: 3 de 10').waitFor();
  assert.equal(await card.locator('progress').getAttribute('value'), '3');
  socket.send(JSON.stringify({type: 'account.auto_linked', account_id: 'acc_novo', cases: 5}));
  await card.locator('[data-testid="linked-count"][data-count="5"]').waitFor();
  await shoot(page, '32-progress');
  socket.send(JSON.stringify({type: 'account.progress', account_id: 'acc_novo', phase: 'INBOX',
                              done: 10, total: 10}));
  await card.locator('progress').waitFor({state: 'hidden'});
});
