// The connection screen with the REAL channel plugins against real test servers: the e-mail
// plugin (email-imap) against Dovecot and Postfix on 127.0.0.1, and the WhatsApp plugin (its Node
// bridge running the unmodified Baileys client) against the WhatsApp test server, whose control
// interface plays the attendant's phone and the customer. Everything the attendant does goes
// through the browser; the servers' own mailboxes and control interface show what arrived.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {HostProcess, requiredEnv} from './support/host.mjs';
import {launchBrowser, shoot} from './support/browser.mjs';
import {decodeQr, token, accessibilityProblems} from './support/screen.mjs';
import {MailServers} from './support/mail.mjs';
import {WhatsAppServer} from './support/whatsapp.mjs';

const kAttendantPhone = '5511900000001';
const kContactPhone = '5511988887777';
const kQrTimeoutMs = 3000;  // each QR lives 3 s; two per pairing, so a pairing expires in ~6 s

const mail = new MailServers();
const whatsapp = new WhatsAppServer({refs: 2});
let host;
let browser;
let page;
let mailCard;
let whatsappCard;

async function eventually(check, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function addAccount(pluginName) {
  const before = await page.locator('article.card').count();
  await page.getByRole('button', {name: `Adicionar conta ${pluginName}`}).click();
  await page.locator('article.card').nth(before).waitFor();
  return page.locator('article.card').nth(before);
}

async function fillMail(card, password) {
  await card.getByLabel(/^Provedor/).selectOption('imap');
  await card.getByLabel(/^Endereço de e-mail/).fill(MailServers.kAgent);
  await card.getByLabel(/^Senha ou senha de app/).fill(password);
  await card.getByText('Mais opções').click();
  await card.getByLabel('Servidor IMAP').fill('127.0.0.1');
  await card.getByLabel('Porta IMAP').fill(String(mail.imapsPort));
  await card.getByLabel('Segurança IMAP').selectOption('tls');
  await card.getByLabel('Servidor SMTP').fill('127.0.0.1');
  await card.getByLabel('Porta SMTP').fill(String(mail.smtpsPort));
  await card.getByLabel('Segurança SMTP').selectOption('tls');
  await card.getByRole('button', {name: 'Conectar E-mail (IMAP/SMTP)'}).click();
}

async function linkedCount(card) {
  return Number(await card.getByTestId('linked-count').getAttribute('data-count'));
}

async function openCase(title, text) {
  const item = page.locator('.case-item', {hasText: title}).first();
  await item.waitFor();
  await item.click();
  await page.getByTestId('messages').filter({hasText: text}).waitFor();
}

async function reply(text) {
  await page.getByTestId('reply-text').fill(text);
  await page.getByRole('button', {name: 'Enviar resposta'}).click();
  await page.getByTestId('reply-status').filter({hasText: 'Resposta enviada.'}).waitFor();
}

// The QR the screen shows, read from its pixels and handed to the test server's phone. The code
// rotates every few seconds: a code that rotated between reading and scanning is read again.
async function scanShownQr(card, name) {
  let lastError;
  for (let attempt = 0; attempt < 4; ++attempt) {
    await card.getByTestId('qr').and(page.locator('[src^="blob:"]')).waitFor();
    const payload = await decodeQr(card, `${name}-${attempt}`);
    try {
      await whatsapp.scan(payload, kAttendantPhone);
      return payload;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

before(async () => {
  mail.start();
  await whatsapp.start();
  const pluginDir = requiredEnv('CONNECTOR_PLUGIN_DIR');
  host = new HostProcess({}, {pluginsYaml: [
    'plugins:',
    '  email-imap:',
    `    library: ${JSON.stringify(path.join(pluginDir, 'libconnector_email_imap.so'))}`,
    '    settings:',
    `      ca_file: ${JSON.stringify(mail.caFile)}`,
    '      timeout_s: 10',
    whatsapp.pluginYaml(pluginDir, {qrTimeoutMs: kQrTimeoutMs}),
  ].join('\n')});
  await host.start();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.goto(host.loginLink);
  await page.getByRole('heading', {name: 'Canais'}).waitFor();
});

after(async () => {
  if (browser) await browser.close();
  if (host) await host.cleanup();
  await whatsapp.stop();
  mail.stop();
});

test('both real channels get a card from their plugins', async () => {
  await page.getByRole('heading', {name: 'E-mail (IMAP/SMTP)'}).waitFor();
  await page.getByRole('heading', {name: 'WhatsApp', exact: true}).waitFor();
  await shoot(page, '40-real-channels');
});

test('e-mail: a wrong password shows the server\'s reason next to the form', async () => {
  const card = await addAccount('E-mail (IMAP/SMTP)');
  await fillMail(card, 'not-the-password');
  const status = card.getByTestId('status');
  await status.and(page.locator('[data-state="error"]')).waitFor({timeout: 30000});
  const accountId = await card.getAttribute('data-account');
  const account = await host.api(await token(page), 'GET', `/accounts/${accountId}`);
  assert.ok(account.json.detail, 'the host has a reason');
  assert.equal(account.json.reason_code, 'auth_failed');
  // The plugin's reason code is said in Portuguese; its own English words stay as the detail.
  const reason = card.getByTestId('form-error');
  await reason.filter({hasText: account.json.detail}).waitFor();
  assert.match(await reason.textContent(),
               /^Não foi possível conectar: o servidor recusou o endereço ou a senha \(detalhe técnico: /);
  assert.match(await status.textContent(), /Erro: o servidor recusou o endereço ou a senha/);
  // The failure is in the integration log once, not once from the plugin and again as the error.
  const failures = card.getByTestId('log').locator('li', {hasText: account.json.detail});
  await failures.first().waitFor();
  const entries = await host.api(await token(page), 'GET', `/accounts/${accountId}/log`);
  const matching = entries.json.items.filter((e) => e.text.includes(account.json.detail));
  assert.equal(matching.length, 1, JSON.stringify(entries.json.items));
  assert.equal(await failures.count(), 1);
  assert.equal(await card.getByLabel(/^Senha ou senha de app/).inputValue(), '',
               'the password is not kept');
  await shoot(page, '41-mail-wrong-password');

  // Removed again through the screen: a real plugin's account goes away as well.
  await card.getByRole('button', {name: 'Remover conta'}).click();
  await page.getByRole('button', {name: 'Sim, remover conta e mensagens'}).click();
  await page.locator(`article.card[data-account="${accountId}"]`).waitFor({state: 'detached'});
  assert.equal((await host.api(await token(page), 'GET', `/accounts/${accountId}`)).status, 404);
});

test('e-mail: connecting shows the first sync\'s progress and "connected as" the address',
     async () => {
  // Mail waiting in the inbox before the account is connected: the first sync brings it in.
  const kWaiting = 3;
  for (let i = 1; i <= kWaiting; ++i) {
    mail.deliver(`loja${i}@fornecedor.test`, MailServers.kAgent, `Nota fiscal ${i}`,
                 `Segue a nota fiscal ${i}.`);
  }
  await eventually(() => mail.mailbox(MailServers.kAgent).length >= kWaiting, 'mail in the inbox');
  // Progress comes and goes quickly: every text it showed is recorded as it changes.
  await page.evaluate(() => {
    window.progressSeen = [];
    new MutationObserver(() => {
      for (const note of document.querySelectorAll('.progress-area .note')) {
        window.progressSeen.push(note.textContent);
      }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
  });

  mailCard = await addAccount('E-mail (IMAP/SMTP)');
  await fillMail(mailCard, MailServers.kPassword);
  await mailCard.getByTestId('status')
      .filter({hasText: `Conectado como ${MailServers.kAgent}`}).waitFor({timeout: 30000});
  await page.locator('.case-item', {hasText: `Nota fiscal ${kWaiting}`}).waitFor();
  const seen = await page.evaluate(() => window.progressSeen);
  assert.ok(seen.some((text) => /^Sincronização inicial da caixa de entrada: \d+ de 3$/.test(text)),
            `the first sync's progress was shown: ${JSON.stringify(seen)}`);
  await mailCard.locator('[data-kind="connected"] .log-text',
                         {hasText: `Conectado como ${MailServers.kAgent}`}).waitFor();
  await mailCard.getByRole('button', {name: 'Desconectar'}).waitFor();
  await shoot(page, '42-mail-connected');
});

test('e-mail: an arriving mail is linked, counted and shown; the reply reaches the mailbox',
     async () => {
  const before = await linkedCount(mailCard);
  mail.deliver(MailServers.kCustomer, MailServers.kAgent, 'Pedido 4471',
               'Bom dia, gostaria de um orçamento.');
  await mailCard.locator(`[data-testid="linked-count"][data-count="${before + 1}"]`)
      .waitFor({timeout: 30000});
  await shoot(page, '43-mail-arrived');

  await openCase('Pedido 4471', 'Bom dia, gostaria de um orçamento.');
  // ASCII, so it can be found in the raw mail whatever transfer encoding the plugin picks.
  await reply('Segue o valor pedido.');
  const arrived = await eventually(
      () => mail.mailbox(MailServers.kCustomer).find((m) => m.includes('Segue o valor pedido.')),
      'the reply in the customer\'s Dovecot mailbox').catch((error) => {
    throw new Error(`${error.message}\n${mail.logs()}\nhost:\n${host.output.slice(-3000)}`);
  });
  // The plugin may add the case number to the subject ("[#4]"), before or after.
  assert.match(arrived, /^Subject: .*Re: Pedido 4471/m);
  assert.match(arrived, new RegExp(`^From: .*${MailServers.kAgent}`, 'm'));
  await shoot(page, '44-mail-replied');
});

test('WhatsApp: the QR expires, "Refresh QR code" brings a new one, scanning it connects',
     async () => {
  whatsappCard = await addAccount('WhatsApp');
  await whatsappCard.getByRole('button', {name: 'Conectar WhatsApp'}).click();
  const image = whatsappCard.getByTestId('qr');
  await image.and(page.locator('[src^="blob:"]')).waitFor({timeout: 30000});
  assert.match(await image.getAttribute('alt'), /QR code para conectar/);
  const box = await image.boundingBox();
  assert.ok(box.width >= 200, `the QR is large enough to scan (${box.width}px)`);
  const first = await decodeQr(whatsappCard, '45-whatsapp-qr');
  assert.match(first, /,/, 'the QR holds a WhatsApp pairing payload');
  assert.deepEqual(await accessibilityProblems(page), [], 'the QR view is labelled and legible');

  // Nobody scans: the pairing runs out.
  const refresh = whatsappCard.getByRole('button', {name: 'Atualizar QR code'});
  await refresh.waitFor({timeout: 30000});
  await whatsappCard.locator('[data-kind="qr_expired"] .log-text', {hasText: 'O QR code expirou'})
      .waitFor();
  await shoot(page, '46-whatsapp-qr-expired');
  assert.deepEqual(await accessibilityProblems(page), [], 'the expired view too');
  await refresh.click();

  const scanned = await scanShownQr(whatsappCard, '47-whatsapp-qr-refreshed');
  assert.notEqual(scanned, first, 'the refreshed QR is a new code');
  const status = whatsappCard.getByTestId('status');
  await status.filter({hasText: `Conectado como +${kAttendantPhone}`}).waitFor({timeout: 30000});
  assert.equal(await whatsappCard.getByTestId('qr').count(), 0, 'the QR goes away');
  await whatsappCard.locator('[data-kind="connected"] .log-text',
                             {hasText: `Conectado como +${kAttendantPhone}`}).waitFor();
  await shoot(page, '48-whatsapp-connected');
});

test('WhatsApp: a message is linked and counted; the reply reaches the contact\'s phone',
     async () => {
  const before = await linkedCount(whatsappCard);
  await whatsapp.send({from: kContactPhone, to: kAttendantPhone, text: 'Oi, meu pedido chegou?',
                       push_name: 'Maria'});
  await whatsappCard.locator(`[data-testid="linked-count"][data-count="${before + 1}"]`)
      .waitFor({timeout: 30000});
  await openCase('Oi, meu pedido chegou?', 'Oi, meu pedido chegou?');
  await reply('Chegou sim, obrigado!');
  const received = await eventually(async () => (await whatsapp.received())
      .find((m) => m.text === 'Chegou sim, obrigado!'), 'the reply at the contact\'s phone');
  assert.equal(received.to, kContactPhone);
  await shoot(page, '49-whatsapp-replied');
});

test('WhatsApp: the phone\'s history is said once on the card and joins the open case',
     async () => {
  const before = await linkedCount(whatsappCard);
  const yesterday = Math.floor(Date.now() / 1000) - 86400;
  await whatsapp.history({to: kAttendantPhone, chats: [{with: kContactPhone, messages: [
    {text: 'Mensagem de ontem, pelo celular', timestamp: yesterday},
    {text: 'Respondida no celular', from_me: true, timestamp: yesterday + 60},
  ]}]});
  await whatsappCard.getByTestId('backlog')
      .filter({hasText: 'Mensagens anteriores importadas sem notificação: 2'})
      .waitFor({timeout: 30000});
  // The contact's case is open on screen (the test before replied on it): both join it.
  const messages = page.getByTestId('messages');
  await messages.filter({hasText: 'Mensagem de ontem, pelo celular'}).waitFor();
  await messages.filter({hasText: 'Respondida no celular'}).waitFor();
  assert.equal(await linkedCount(whatsappCard), before, 'the history opened no case');
  await shoot(page, '49a-whatsapp-history');
});

test('WhatsApp: pairing with a phone number shows the code to type on the phone', async () => {
  const card = await addAccount('WhatsApp');
  const accountId = await card.getAttribute('data-account');
  await card.getByText('Parear com código em vez do QR code').click();
  await card.getByLabel(/^Número de telefone, para parear com código/).fill('+55 11 90000-0002');
  await card.getByRole('button', {name: 'Conectar WhatsApp'}).click();
  const code = card.getByTestId('pairing-code');
  await code.waitFor({timeout: 30000});
  assert.match(await code.textContent(), /^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  await shoot(page, '49b-whatsapp-pairing-code');
  // Not wanted after all: the account is removed through the screen.
  await card.getByRole('button', {name: 'Remover conta'}).click();
  await page.getByRole('button', {name: 'Sim, remover conta e mensagens'}).click();
  await page.locator(`article.card[data-account="${accountId}"]`).waitFor({state: 'detached'});
});

test('disconnecting a real channel: cancel keeps it connected, confirm disconnects', async () => {
  const status = whatsappCard.getByTestId('status');
  await whatsappCard.getByRole('button', {name: 'Desconectar'}).click();
  const dialog = page.getByRole('dialog', {name: 'Desconectar esta conta?'});
  await dialog.getByRole('button', {name: 'Cancelar'}).click();
  await dialog.waitFor({state: 'hidden'});
  assert.equal(await status.getAttribute('data-state'), 'connected');

  await mailCard.getByRole('button', {name: 'Desconectar'}).click();
  await dialog.getByRole('button', {name: 'Sim, desconectar'}).click();
  await mailCard.getByTestId('status').filter({hasText: 'Não conectado'}).waitFor();
  await mailCard.locator('[data-kind="disconnected"] .log-text', {hasText: 'Desconectado'})
      .waitFor();
  assert.equal(await status.getAttribute('data-state'), 'connected', 'only that account');
  await shoot(page, '50-mail-disconnected');
});

test('WhatsApp: a session replaced elsewhere is said in Portuguese, the plugin\'s words kept as detail',
     async () => {
  const status = whatsappCard.getByTestId('status');
  assert.equal(await status.getAttribute('data-state'), 'connected');
  const {kicked} = await whatsapp.call('POST', '/kick', {phone: kAttendantPhone, code: 440});
  assert.ok(kicked > 0, 'the test server ended the session');
  await status.filter({hasText: 'o WhatsApp Web foi aberto em outro lugar'}).waitFor();
  assert.match(await status.textContent(),
               /detalhe técnico: replaced by another WhatsApp Web session/);
  await shoot(page, '51-whatsapp-replaced');
  // In English the same reason comes in English.
  await page.getByLabel('Idioma').selectOption('en');
  await status.filter({hasText: 'WhatsApp Web was opened elsewhere'}).waitFor();
  await page.getByLabel('Language').selectOption('pt-BR');
  await status.filter({hasText: 'o WhatsApp Web foi aberto em outro lugar'}).waitFor();
});
