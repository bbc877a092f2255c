// Paging in the case view: more cases than one page (50) and a case with more messages than one
// page (100), against the real host with the loopback plugin. "Load older" fetches the next page
// through the API's ?before= paging; without it the oldest case and message are never shown.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {HostProcess} from './support/host.mjs';
import {launchBrowser, shoot} from './support/browser.mjs';
import {token} from './support/screen.mjs';

const kCases = 55;
// The first send's echo opens the customer's case; every later send is filed under it and echoed
// back into it too: 1 + 2 × 54 = 109 messages in one case.
const kSends = 55;
const kCaseMessages = 2 * kSends - 1;
const kCustomer = '+5511987651234';

const host = new HostProcess({});
let browser;
let page;
let firstCaseId;
let busyCaseId;
let accountId;

before(async () => {
  await host.start();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.goto(host.loginLink);
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
  const bearer = await token(page);

  const created = [];
  for (let i = 1; i <= kCases; ++i) {
    const made = await host.api(bearer, 'POST', '/cases', {title: `Pedido ${i}`});
    assert.equal(made.status, 201, JSON.stringify(made.json));
    created.push(made.json.id);
  }
  firstCaseId = created[0];

  const account = await host.api(bearer, 'POST', '/accounts', {plugin: 'loopback'});
  assert.equal(account.status, 201, JSON.stringify(account.json));
  const id = account.json.id;
  accountId = id;
  const connect = await host.api(bearer, 'POST', `/accounts/${id}/connect`,
                                 {values: {method: 'password', account: 'paginas', password: 'x'}});
  assert.equal(connect.status, 202, JSON.stringify(connect.json));
  for (let i = 0; i < 50 && (await host.api(bearer, 'GET', `/accounts/${id}`)).json.state !== 'connected'; ++i) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const waitForCase = async (count) => {
    for (let i = 0; i < 100; ++i) {
      const cases = await host.api(bearer, 'GET', '/cases?limit=5');
      const busy = cases.json.items.find((c) => c.title === 'echo: mensagem 1'
                                                && c.message_count >= count);
      if (busy) return busy.id;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  };
  for (let i = 1; i <= kSends; ++i) {
    const sent = await host.api(bearer, 'POST', `/accounts/${id}/messages`,
                                {to: kCustomer, text: `mensagem ${i}`, case_id: busyCaseId});
    assert.equal(sent.status, 201, JSON.stringify(sent.json));
    if (i === 1) busyCaseId = await waitForCase(1);
  }
  busyCaseId = await waitForCase(kCaseMessages);
  assert.ok(busyCaseId, 'the loopback messages made one case with every message');
  await page.reload();
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
});

after(async () => {
  if (browser) await browser.close();
  await host.cleanup();
});

test('the case list pages back with "Load older cases"', async () => {
  const list = page.getByTestId('case-list');
  await list.locator('.case-item').first().waitFor();
  assert.equal(await list.locator('.case-item').count(), 50, 'the first page has 50 cases');
  assert.equal(await list.locator(`[data-case="${firstCaseId}"]`).count(), 0);
  const older = page.getByRole('button', {name: 'Carregar casos mais antigos'});
  await older.click();
  await list.locator(`[data-case="${firstCaseId}"]`).waitFor();
  assert.equal(await list.locator('.case-item').count(), kCases + 1);
  await older.waitFor({state: 'hidden'});  // the last page: nothing older left
  // Keyboard users land on the first case of the new page.
  const focused = Number(await page.evaluate(() => document.activeElement.dataset.case));
  assert.ok(focused > 0 && focused < busyCaseId, `focus on a newly loaded case (${focused})`);
  await shoot(page, '33-older-cases');

  // A live update (a new customer's message opens a case) keeps the older cases shown.
  const sent = await host.api(await token(page), 'POST', `/accounts/${accountId}/messages`,
                              {to: '+5511987659999', text: 'cliente novo'});
  assert.equal(sent.status, 201, JSON.stringify(sent.json));
  await list.locator('.case-item', {hasText: 'echo: cliente novo'}).waitFor();
  assert.equal(await list.locator(`[data-case="${firstCaseId}"]`).count(), 1);
});

test('a long case pages back with "Load older messages"', async () => {
  await page.locator(`.case-item[data-case="${busyCaseId}"]`).click();
  const messages = page.getByTestId('messages');
  await messages.locator('.message').first().waitFor();
  assert.equal(await messages.locator('.message').count(), 100, 'the first page has 100 messages');
  assert.equal(await messages.locator('.message-text', {hasText: /^echo: mensagem 1$/}).count(), 0);
  await messages.locator('.message-text', {hasText: /^echo: mensagem 55$/}).waitFor();
  await page.getByRole('button', {name: 'Carregar mensagens mais antigas'}).click();
  await messages.locator('.message-text', {hasText: /^echo: mensagem 1$/}).waitFor();
  assert.equal(await messages.locator('.message').count(), kCaseMessages);
  // Oldest first, as a conversation reads.
  assert.equal(await messages.locator('.message-text').first().textContent(), 'echo: mensagem 1');
  await page.getByRole('button', {name: 'Carregar mensagens mais antigas'})
      .waitFor({state: 'hidden'});
  await shoot(page, '34-older-messages');
});
