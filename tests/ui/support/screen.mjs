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

// What an accessibility checker would flag on the page as it is now: controls without a name
// (form fields without a <label> or aria label; buttons, links and summaries without text) and
// visible text whose contrast with its background is below WCAG AA (4.5:1, 3:1 for large text).
// Computed in the page from the rendered styles. Disabled controls are exempt, as in WCAG.
export async function accessibilityProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
        `${el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : ''}` +
        ` "${(el.textContent || el.name || '').trim().slice(0, 40)}"`;
    const named = (el) => {
      const aria = (el.getAttribute('aria-label') || '').trim();
      if (aria) return true;
      const by = el.getAttribute('aria-labelledby');
      if (by && by.split(/\s+/).some((id) => (document.getElementById(id)?.textContent || '').trim())) {
        return true;
      }
      if (el.matches('input, select, textarea')) {
        return [...(el.labels || [])].some((label) => label.textContent.trim());
      }
      return el.textContent.trim() !== '' || (el.getAttribute('title') || '').trim() !== '';
    };
    for (const el of document.querySelectorAll('input, select, textarea, button, a[href], summary')) {
      // A closed <dialog> is not exposed to assistive technology; it is checked when open.
      if (el.type === 'hidden' || el.closest('dialog:not([open])')) continue;
      if (!named(el)) problems.push(`no accessible name: ${describe(el)}`);
    }
    for (const img of document.querySelectorAll('img')) {
      if (!img.hasAttribute('alt')) problems.push(`image without alt: ${describe(img)}`);
    }

    const parse = (color) => {
      const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(color);
      return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])]
               : [0, 0, 0, 0];
    };
    const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3]))
        .concat(1);
    const background = (el) => {
      const layers = [];
      for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
        const bg = parse(getComputedStyle(node).backgroundColor);
        if (bg[3] > 0) layers.push(bg);
        if (bg[3] === 1) break;
      }
      let result = [255, 255, 255, 1];
      for (const layer of layers.reverse()) result = over(layer, result);
      return result;
    };
    const luminance = ([r, g, b]) => {
      const channel = (v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    for (const el of document.querySelectorAll('body *')) {
      const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!hasText || el.closest(':disabled, [hidden], .visually-hidden')) continue;
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (box.width === 0 || box.height === 0 || style.visibility === 'hidden') continue;
      const bg = background(el);
      const fg = over(parse(style.color), bg);
      const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (light + 0.05) / (dark + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        problems.push(`contrast ${ratio.toFixed(2)}:1 for ${describe(el)} (${style.color} on ` +
                      `rgb(${bg.slice(0, 3).map(Math.round).join(', ')}))`);
      }
    }
    return problems;
  });
}
