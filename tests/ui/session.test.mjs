// Signing in and out, and what the screen says when something is refused, in a real browser
// against a real host: "Sair" revokes the token on the host; a token revoked elsewhere ends the
// screen's session at once; a token with characters no token has gets the right error; the
// host's refusals and its OAuth return page are in the chosen language; number fields are
// checked in words; the focus survives removing an account; HTML-only mail keeps its paragraphs.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {HostProcess, requiredEnv} from './support/host.mjs';
import {launchBrowser, shoot} from './support/browser.mjs';
import {addLoopbackAccount, token} from './support/screen.mjs';

const host = new HostProcess({}, {pluginsYaml: [
  'plugins:',
  '  loopback:',
  '    enabled: true',
  '  email-imap:',
  `    library: ${JSON.stringify(path.join(requiredEnv('CONNECTOR_PLUGIN_DIR'),
                                          'libconnector_email_imap.so'))}`,
  '  ghost:',
  '    library: /nonexistent/libconnector_ghost.so',
].join('\n')});
let browser;
let page;
let admin;  // the admin's token, kept outside the browser
let adminId;

// A fresh one-time link for the admin, as `connector-host login-link` would print.
async function loginLink() {
  const made = await host.api(admin, 'POST', `/attendants/${adminId}/login-link`);
  assert.equal(made.status, 201, JSON.stringify(made.json));
  return made.json.url;
}

// A fresh load of the link (the tab may be on the screen already, where opening a link only
// changes the fragment: that path has a test of its own below).
async function signIn() {
  const link = await loginLink();
  await page.goto('about:blank');
  await page.goto(link);
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
  await page.locator('#live-status[data-state="online"]').waitFor();
  return token(page);
}

before(async () => {
  await host.start();
  const code = new URL(host.loginLink).hash.replace('#login=', '');
  const redeemed = await fetch(`${host.url}/api/v1/auth/login-link`, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({code}),
  });
  admin = (await redeemed.json()).token;
  adminId = (await host.api(admin, 'GET', '/me')).json.attendant_id;
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
});

after(async () => {
  if (browser) await browser.close();
  await host.cleanup();
});

test('"Sair" revokes the token on the host, not only in the browser', async () => {
  const bearer = await signIn();
  assert.equal((await host.api(bearer, 'GET', '/me')).status, 200);
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  assert.match(await page.getByTestId('login-error').textContent(), /Você saiu\. O token .* revogado/);
  assert.equal(await token(page), null, 'forgotten in the browser');
  // A copy of the token is worth nothing now: the host refuses it everywhere.
  for (const route of ['/me', '/accounts', '/plugins', '/cases']) {
    assert.equal((await host.api(bearer, 'GET', route)).status, 401, route);
  }
  assert.equal(await page.locator('#workspace').isVisible(), false);
  await shoot(page, '50-signed-out-revoked');
});

test('a token revoked elsewhere ends the screen\'s session at once, by its live stream',
     async () => {
  const bearer = await signIn();
  // No answer to a request of the screen tells it (a list it reloads for a late event is
  // answered before the revocation, or not at all); only the WebSocket's close frame (code 4401)
  // can. Without one it would report the host as unreachable instead.
  const requests = [];
  page.on('response', (response) => {
    const url = response.url();
    if (url.includes('/api/v1/') && !url.endsWith('/events') && response.status() === 401) {
      requests.push(url);
    }
  });
  const revoked = await host.api(bearer, 'DELETE', '/tokens/current');
  assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  assert.match(await page.getByTestId('login-error').textContent(),
               /Sua sessão foi encerrada no servidor \(o token foi revogado\)/);
  assert.deepEqual(requests, [], 'the screen learnt it from the close frame, not a request');
  assert.equal(await token(page), null);
  await shoot(page, '51-revoked-elsewhere');
});

test('a channel the host could not load says why in Portuguese', async () => {
  await signIn();
  const refused = page.locator('section[data-plugin="ghost"] .error-text');
  await refused.waitFor();
  assert.match(await refused.textContent(),
               /^Este canal não pôde ser carregado: o arquivo do canal não foi encontrado \(detalhe técnico: /);
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('a token with an emoji gets the error about its characters, not "no answer"', async () => {
  await page.goto(host.url);
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  await page.getByLabel('Token de API').fill('cht_🔑abc123');
  await page.getByRole('button', {name: 'Entrar'}).click();
  const error = page.getByTestId('login-error');
  await error.filter({hasText: 'caracteres que um token nunca tem'}).waitFor();
  assert.doesNotMatch(await error.textContent(), /servidor não respondeu/);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'login-error');
  await shoot(page, '52-emoji-token');
});

test('a refused login link is explained in Portuguese, and in English when chosen', async () => {
  await page.goto(`${host.url}/#login=not-a-real-code-000000`);
  const error = page.getByTestId('login-error');
  await error.filter({hasText: 'O link de acesso não funcionou'}).waitFor();
  assert.equal(await error.textContent(),
               'O link de acesso não funcionou: o link é desconhecido, expirou ou já foi usado. ' +
               'Peça um novo link ao administrador.');
  await shoot(page, '53-link-refused-pt');

  await page.getByLabel('Idioma').selectOption('en');
  await page.goto(`${host.url}/#login=not-a-real-code-000001`);
  await error.filter({hasText: 'The sign-in link did not work'}).waitFor();
  assert.match(await error.textContent(), /the link is unknown, expired or was already used/);
  await shoot(page, '54-link-refused-en');
  await page.getByLabel('Language').selectOption('pt-BR');
});

test('the page after an OAuth sign-in follows the screen\'s language', async () => {
  const callback = `${host.url}/api/v1/oauth/callback?state=unknown-state&code=x`;
  await page.goto(host.url);
  await page.goto(callback);
  await page.getByRole('heading', {name: 'Login não concluído'}).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'pt-BR');
  assert.match(await page.locator('p').textContent(), /Comece o login de novo/);
  await shoot(page, '55-oauth-return-pt');

  await page.goto(host.url);
  await page.getByLabel('Idioma').selectOption('en');
  await page.goto(callback);
  await page.getByRole('heading', {name: 'Sign-in not completed'}).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await shoot(page, '56-oauth-return-en');
  await page.goto(host.url);
  await page.getByLabel('Language').selectOption('pt-BR');
});

test('an IMAP port out of range is refused in words, with the focus on it', async () => {
  await signIn();
  await page.getByRole('button', {name: 'Adicionar conta E-mail (IMAP/SMTP)'}).click();
  const card = page.locator('article.card[data-account]').last();
  await card.getByLabel(/^Endereço de e-mail/).fill('agente@empresa.test');
  await card.getByLabel(/^Senha ou senha de app/).fill('segredo');
  await card.getByText('Mais opções').click();
  await card.getByLabel('Servidor IMAP').fill('127.0.0.1');
  await card.getByLabel('Servidor SMTP').fill('127.0.0.1');
  await card.getByLabel('Porta IMAP').fill('70000');
  await card.getByRole('button', {name: 'Conectar E-mail (IMAP/SMTP)'}).click();
  const error = card.getByTestId('form-error');
  await error.filter({hasText: 'Porta IMAP'}).waitFor();
  assert.equal(await error.textContent(),
               'O campo “Porta IMAP” deve ser um número inteiro entre 1 e 65535.');
  const focused = await page.evaluate(() => ({name: document.activeElement.name,
                                              invalid: document.activeElement.getAttribute('aria-invalid')}));
  assert.deepEqual(focused, {name: 'imap_port', invalid: 'true'});
  assert.equal(await card.getByTestId('status').getAttribute('data-state'), 'disconnected',
               'nothing was sent');
  await shoot(page, '57-imap-port-refused');

  // Corrected, the same form goes through (and fails later only for the missing server).
  await card.getByLabel('Porta IMAP').fill('993');
  await card.getByRole('button', {name: 'Conectar E-mail (IMAP/SMTP)'}).click();
  await card.getByTestId('status').and(page.locator('[data-state="connecting"], [data-state="error"]'))
      .waitFor();
  const id = await card.getAttribute('data-account');
  await host.api(await token(page), 'DELETE', `/accounts/${id}`);
  await page.locator(`article.card[data-account="${id}"]`).waitFor({state: 'detached'});
});

test('removing an account by keyboard leaves the focus on "Add account", even when the ' +
     'host\'s event takes the card first', async () => {
  await signIn();
  const card = await addLoopbackAccount(page);
  const accountId = await card.getAttribute('data-account');
  // The host's answer is held back until its "account.removed" event has removed the card, the
  // order a busy host or network produces.
  await page.route(`**/api/v1/accounts/${accountId}`, async (route) => {
    if (route.request().method() !== 'DELETE') return route.fallback();
    const response = await route.fetch();
    await page.locator(`article.card[data-account="${accountId}"]`).waitFor({state: 'detached'});
    await route.fulfill({response});
  });
  await card.getByRole('button', {name: 'Remover conta'}).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', {name: 'Remover esta conta e as mensagens dela?'});
  await dialog.waitFor();
  await page.keyboard.press('Tab');  // from "Cancelar" to the confirmation
  assert.equal(await page.evaluate(() => document.activeElement.textContent),
               'Sim, remover conta e mensagens');
  await page.keyboard.press('Enter');
  await page.locator(`article.card[data-account="${accountId}"]`).waitFor({state: 'detached'});
  await page.waitForFunction(() => document.activeElement.matches(
      'section[data-plugin="loopback"] button.add-account'));
  await shoot(page, '58-removed-focus');
  // The keyboard goes on from there: Enter adds a new account.
  const before = await page.locator('article.card').count();
  await page.keyboard.press('Enter');
  await page.locator('article.card').nth(before).waitFor();
  await page.unroute(`**/api/v1/accounts/${accountId}`);
});

test('an HTML-only mail keeps its paragraphs and lines in the case view, as text only',
     async () => {
  const bearer = await token(page);
  const created = await host.api(bearer, 'POST', '/accounts', {plugin: 'loopback'});
  const accountId = created.json.id;
  const connected = await host.api(bearer, 'POST', `/accounts/${accountId}/connect`,
                                   {values: {method: 'password', account: 'lia', password: 'x'}});
  assert.equal(connected.status, 202, JSON.stringify(connected.json));
  await page.locator(`[data-account="${accountId}"] [data-state="connected"]`).waitFor();
  const first = await host.api(bearer, 'POST', `/accounts/${accountId}/messages`,
                               {to: '+5511987650123', text: 'Olá'});
  assert.equal(first.status, 201, JSON.stringify(first.json));
  // The loopback channel echoes the message back as the customer's, which opens a case.
  let kase;
  for (let i = 0; i < 100 && !kase; ++i) {
    const cases = await host.api(bearer, 'GET', '/cases');
    kase = cases.json.items.find((c) => c.message_count >= 1);
    if (!kase) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(kase, 'a case was made');
  const html = '<html><head><style>p{color:red}</style></head><body>' +
      '<h1>Pedido 42</h1><p>Primeiro parágrafo.</p><p>Segundo <b>parágrafo</b>.</p>' +
      'Linha um<br>Linha dois<div>Bloco</div><ul><li>item a</li><li>item b</li></ul>' +
      '<table><tr><td>Qtd</td><td>2</td></tr><tr><td>Total</td><td>R$ 10</td></tr></table>' +
      '<img src="x" onerror="window.pwned=1"><script>window.pwned=2</script></body></html>';
  const sent = await host.api(bearer, 'POST', `/accounts/${accountId}/messages`,
                              {to: '+5511987650123', case_id: kase.id, html});
  assert.equal(sent.status, 201, JSON.stringify(sent.json));
  await page.reload();
  await page.locator(`.case-item[data-case="${kase.id}"]`).click();
  const text = page.locator(`[data-message="${sent.json.id}"] .message-text`);
  await text.waitFor();
  assert.equal(await text.textContent(),
               'Pedido 42\n\nPrimeiro parágrafo.\n\nSegundo parágrafo.\n\nLinha um\nLinha dois\n' +
               'Bloco\n\n• item a\n• item b\n\nQtd\t2\nTotal\tR$ 10');
  assert.equal(await page.getByTestId('messages').locator('img, b, script, h1, p b').count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  await shoot(page, '59-html-paragraphs');
});

test('a mangled login link says it did not work; a second link revokes the first sign-in',
     async () => {
  for (const mangled of ['#login=%E0%A4%A', '#login=', '#login=abc&x=y']) {
    await page.goto(`${host.url}/${mangled}`);
    await page.getByRole('heading', {name: 'Entrar'}).waitFor();
    assert.match(await page.getByTestId('login-error').textContent(),
                 /O link de acesso não funcionou: o link chegou incompleto ou alterado/, mangled);
    assert.equal(new URL(page.url()).hash, '', `${mangled} left in the address bar`);
  }

  const first = await signIn();
  // Another link opened in the same tab only changes the fragment: the first token leaves.
  const link = await loginLink();
  await page.evaluate((hash) => { window.location.hash = hash; }, new URL(link).hash);
  await page.waitForFunction((old) => {
    const now = sessionStorage.getItem('connector.token');
    return now && now !== old;
  }, first);
  await page.locator('#live-status[data-state="online"]').waitFor();
  assert.equal((await host.api(first, 'GET', '/me')).status, 401, 'the first token still works');
  assert.equal((await host.api(await token(page), 'GET', '/me')).status, 200);
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('a whole login link pasted as a token signs in as the link it is', async () => {
  await page.goto(host.url);
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  await page.getByLabel('Token de API').fill(` ${await loginLink()} `);
  await page.getByRole('button', {name: 'Entrar'}).click();
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
  assert.equal((await host.api(await token(page), 'GET', '/me')).status, 200);
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('an account name cannot reorder the status sentence, is cut to fit, and spaces fill nothing',
     async () => {
  await signIn();
  const card = await addLoopbackAccount(page);
  await card.getByLabel('Nome da conta').fill('   ');
  await card.getByLabel(/^Senha$/).fill('correct-horse');
  await card.getByRole('button', {name: /Conectar Loopback/}).click();
  assert.match(await card.locator('.error-text[role="alert"]').first().textContent(),
               /Nome da conta/);
  assert.equal(await card.locator('.status').getAttribute('data-state'), 'disconnected');

  // U+202E would show "gnp.exe" as "exe.png"; 200 characters would fill the card.
  await card.getByLabel('Nome da conta').fill('\u202Egnp.exe' + 'x'.repeat(200));
  await card.getByRole('button', {name: /Conectar Loopback/}).click();
  const status = card.locator('.status[data-state="connected"]');
  await status.waitFor();
  const shown = await status.textContent();
  assert.ok(!shown.includes('\u202E'), 'the override reached the screen');
  assert.match(shown, /gnp\.exex+…/);
  assert.ok(shown.length < 140, `the status holds ${shown.length} characters`);
  await shoot(page, '56-account-name-isolated');
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('unnamed accounts never share a name, after a removal either', async () => {
  const bearer = await signIn();
  const titles = () => page.locator('section[data-plugin="loopback"] .card-title').allTextContents();
  for (let i = 0; i < 3; ++i) await addLoopbackAccount(page);
  const before = await titles();
  assert.equal(new Set(before).size, before.length, before.join(' | '));
  // One goes away (removed elsewhere: the host's event takes the card), one more comes.
  const first = await page.locator('section[data-plugin="loopback"] article.card').first()
      .getAttribute('data-account');
  assert.equal((await host.api(bearer, 'DELETE', `/accounts/${first}`)).status, 200);
  await page.locator(`article.card[data-account="${first}"]`).waitFor({state: 'detached'});
  await addLoopbackAccount(page);
  const after = await titles();
  assert.equal(new Set(after).size, after.length, after.join(' | '));
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('switching language keeps what the screen said and what was typed', async () => {
  // On the sign-in screen: the refusal is said again in the new language.
  await page.goto(`${host.url}/#login=%E0%A4%A`);
  await page.getByTestId('login-error').filter({hasText: /não funcionou/}).waitFor();
  await page.getByLabel('Idioma').selectOption('en');
  await page.getByTestId('login-error').filter({hasText: /did not work/}).waitFor();
  await page.getByLabel('Language').selectOption('pt-BR');
  await page.getByTestId('login-error').filter({hasText: /não funcionou/}).waitFor();

  // Signed in: a half-filled connect form survives the switch.
  await signIn();
  const card = await addLoopbackAccount(page);
  const id = await card.getAttribute('data-account');
  await card.getByLabel('Nome da conta').fill('meio-digitado@empresa.com');
  await page.getByLabel('Idioma').selectOption('en');
  const again = page.locator(`article.card[data-account="${id}"]`);
  await again.getByLabel('Account name').waitFor();
  assert.equal(await again.getByLabel('Account name').inputValue(), 'meio-digitado@empresa.com');
  await page.getByLabel('Language').selectOption('pt-BR');
  await page.getByRole('button', {name: 'Sair'}).click();
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
});

test('a token or link code far too long is said in Portuguese, not in the host\'s English',
     async () => {
  await page.goto(host.url);
  await page.getByRole('heading', {name: 'Entrar'}).waitFor();
  await page.getByLabel('Token de API').fill('cht_' + 'a'.repeat(17000));
  await page.getByRole('button', {name: 'Entrar'}).click();
  await page.getByTestId('login-error').filter({hasText: /longo demais para ser um token/}).waitFor();

  await page.goto(`${host.url}/#login=${'a'.repeat(300)}`);
  await page.getByTestId('login-error')
      .filter({hasText: /O link de acesso não funcionou: o link chegou incompleto/}).waitFor();
});
