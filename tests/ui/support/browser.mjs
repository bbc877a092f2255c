// Debian's chromium, driven by playwright-core. No browser is downloaded: the executable is the
// system one (CHROMIUM, default /usr/bin/chromium), with a fresh profile for every run.
import {chromium} from 'playwright-core';
import {mkdtempSync, mkdirSync, rmSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';

const kFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumPath() {
  return process.env.CHROMIUM ?? '/usr/bin/chromium';
}

// locale: the language the browser announces (navigator.language, Accept-Language).
export async function launchBrowser({locale = 'pt-BR'} = {}) {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) throw new Error(`no chromium at ${executablePath}: apt-get install chromium`);
  const profile = mkdtempSync(path.join(tmpdir(), 'connector-ui-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: kFlags, viewport: {width: 1280, height: 900},
    locale,
  });
  context.setDefaultTimeout(15000);
  const close = async () => {
    await context.close();
    rmSync(profile, {recursive: true, force: true});
  };
  return {context, close};
}

// Screenshots go to $UI_SCREENSHOT_DIR (ctest sets it under the build folder).
export function screenshotPath(name) {
  const dir = process.env.UI_SCREENSHOT_DIR ?? path.join(tmpdir(), 'ui-screenshots');
  mkdirSync(dir, {recursive: true});
  return path.join(dir, `${name}.png`);
}

export async function shoot(page, name) {
  await page.screenshot({path: screenshotPath(name), fullPage: true});
}
