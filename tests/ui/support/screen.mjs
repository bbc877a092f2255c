// Steps on the connection screen shared by the test files.
import {execFileSync} from 'node:child_process';
import {screenshotPath} from './browser.mjs';

// Adds an account of the loopback plugin through the screen; returns its card.
export async function addLoopbackAccount(page) {
  const before = await page.locator('article.card').count();
  await page.getByRole('button', {name: /Adicionar conta Loopback|Add Loopback/}).click();
  await page.locator('article.card').nth(before).waitFor();
  return page.locator('article.card').nth(before);
}

export async function fillLoopback(card, {method = 'password', account, password}) {
  await card.getByLabel(/Método de acesso|Sign-in method/).selectOption(method);
  await card.getByLabel(/Nome da conta|Account name/).fill(account);
  if (password !== undefined) await card.getByLabel(/^(Senha|Password)$/).fill(password);
  await card.getByRole('button', {name: /Conectar Loopback|Connect Loopback/}).click();
}

// Reads the QR code shown in a card the way a phone would: from pixels on the screen.
export async function decodeQr(card, name) {
  const file = screenshotPath(name);
  await card.locator('.qr-frame').screenshot({path: file});
  return execFileSync('zbarimg', ['--quiet', '--raw', file], {encoding: 'utf8'}).trim();
}

export async function token(page) {
  return page.evaluate(() => sessionStorage.getItem('connector.token'));
}
