// The connection screen: signs in, then shows the channels and cases and keeps them live.
import {Api, isTokenText, redeemLoginCode} from './api.js';
import {CasesView} from './cases.js';
import {ChannelsView, reasonOf} from './channels.js';
import {h, replaceChildren, uniqueId} from './dom.js';
import {EventStream} from './events.js';
import {kLanguages, language, setLanguage, t} from './i18n.js';
import {Session, loginCodeInText, takeLoginCode} from './session.js';

const session = new Session();
// A 401 while the screen is open means the token was revoked or expired. Before that (checking
// a pasted or stored token) the caller says what went wrong.
const api = new Api(session, () => { if (channels) signOut(() => t('login.expired')); });
const $ = (id) => document.getElementById(id);

let channels = null;
let cases = null;
let events = null;

// --- Shell and language ---------------------------------------------------------------------------

function labelShell() {
  document.documentElement.lang = language();
  document.title = t('app.title');
  $('app-title').textContent = t('app.title');
  $('skip-link').textContent = t('app.skip');
  $('language-label').textContent = t('lang.label');
  $('sign-out').textContent = t('signout');
  $('confirm-cancel').textContent = t('confirm.cancel');
}

function setupLanguage() {
  const select = $('language');
  for (const {code, name} of kLanguages) {
    select.append(h('option', {value: code, lang: code, text: name}));
  }
  select.value = language();
  select.addEventListener('change', async () => {
    setLanguage(select.value);
    labelShell();
    if (!session.signedIn()) {
      showLogin(loginMessage);  // said again in the new language
      return;
    }
    setLiveState(liveState);
    const casesView = cases;
    await channels.relabel();
    if (casesView === cases) casesView.relabel();
  });
}

let liveState = 'connecting';
function setLiveState(state) {
  liveState = state;
  const el = $('live-status');
  el.hidden = false;
  el.dataset.state = state;
  el.textContent = t(`live.${state}`);
}

// --- Confirmation (disconnecting, removing an account) -------------------------------------------

// Resolves true only when the attendant confirms; Escape and "Cancel" leave things as they are.
function confirmAction({title, body, ok}) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-body').textContent = body;
  $('confirm-ok').textContent = ok;
  $('confirm-cancel').textContent = t('confirm.cancel');
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), {once: true});
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

// --- Signing in -----------------------------------------------------------------------------------

// The host's tokens are about 50 characters; anything much longer was pasted by mistake (and a
// header that large would be refused before the token is even read).
const kLongestToken = 512;

// What the sign-in screen says, as a function of the language when it comes from t().
let loginMessage = '';

function showLogin(message = '') {
  loginMessage = message;
  if (typeof message === 'function') message = message();
  $('workspace').hidden = true;
  $('sign-out').hidden = true;
  $('live-status').hidden = true;
  const login = $('login');
  login.hidden = false;
  const id = uniqueId('token');
  const input = h('input', {id, type: 'password', autocomplete: 'off', required: true,
                            spellcheck: 'false'});
  const error = h('p', {class: 'error-text', role: 'alert', 'data-testid': 'login-error',
                        tabindex: '-1', text: message});
  const form = h('form', {class: 'login-form'},
                 h('label', {for: id, text: t('login.token')}), input,
                 h('div', {class: 'actions'},
                   h('button', {type: 'submit', class: 'primary', text: t('login.submit')})),
                 error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    const code = loginCodeInText(token);
    if (code !== null) {
      // A whole login link pasted here: use it as the link it is.
      input.value = '';
      if (await signInWithCode(code)) await enter();
      return;
    }
    if (token.length > kLongestToken) {
      showLoginError(error, () => t('login.token_too_long'));
      return;
    }
    if (!isTokenText(token)) {
      showLoginError(error, () => t('login.token_bad_chars'));
      return;
    }
    session.keep(token);
    try {
      await api.get('/me');
      input.value = '';
      await enter();
    } catch (failure) {
      session.forget();
      showLoginError(error, () => t('login.token_failed', {reason: reasonOf(failure)}));
    }
  });
  replaceChildren(login, h('h2', {id: 'login-heading', text: t('login.heading')}),
                  h('p', {text: t('login.intro')}), form);
}

function showLoginError(error, message) {
  loginMessage = message;
  error.textContent = message();
  $('login').hidden = false;
  $('workspace').hidden = true;
  error.focus();
}

// "Sair": the token is revoked on the host (which also closes its WebSockets), not only
// forgotten here, so a copy of it left in this browser is worth nothing.
async function signOutAndRevoke() {
  const button = $('sign-out');
  button.disabled = true;
  if (events) events.stop();
  events = null;
  let message = () => t('login.signed_out');
  try {
    await api.delete('/tokens/current');
  } catch (failure) {
    // 401: already revoked elsewhere, which is what was wanted.
    if (failure.status !== 401) message = () => t('login.signout_failed', {reason: reasonOf(failure)});
  } finally {
    button.disabled = false;
  }
  signOut(message);
}

function signOut(message = '') {
  session.forget();
  if (events) events.stop();
  events = null;
  channels = null;
  cases = null;
  replaceChildren($('channels'));
  replaceChildren($('cases'));
  showLogin(message);
}

async function enter() {
  $('login').hidden = true;
  replaceChildren($('login'));
  $('workspace').hidden = false;
  $('sign-out').hidden = false;
  channels = new ChannelsView($('channels'), api, confirmAction);
  cases = new CasesView($('cases'), api, (accountId, pluginId) => {
    const card = channels.cards.get(accountId);
    return channels.pluginName(card ? card.account.plugin : pluginId);
  });
  const stream = new EventStream(session, {
    onEvent: onEvent,
    onOpen: reload,
    onState: (state) => {
      setLiveState(state);
      // A socket that keeps failing may mean the token was revoked; the API call tells.
      if (state === 'offline') api.get('/me').catch(() => {});
    },
    onRevoked: () => signOut(() => t('login.revoked')),
  });
  events = stream;
  setLiveState('connecting');
  await reload();
  // Signed out (or in again) while loading: this stream belongs to a session that is gone.
  if (events === stream) stream.start();
}

async function reload() {
  // Signing out while this runs drops the views: only the ones it started with are loaded.
  const [channelsView, casesView] = [channels, cases];
  if (!channelsView) return;
  try {
    await channelsView.load();
  } catch {
    return;  // the host is away; the event stream reconnects and reloads
  }
  if (casesView === cases) await casesView.load();
}

function onEvent(event) {
  if (!channels) return;
  if (!channels.handle(event)) {
    reload();
    return;
  }
  cases.handle(event);
}

// --- Start ------------------------------------------------------------------------------------------

// Turns the code of a login link into a token. Returns false when the link did not work.
async function signInWithCode(code) {
  if (!code) {
    showLogin(() => t('login.link_failed', {reason: t('login.link_mangled')}));
    return false;
  }
  const login = $('login');
  login.hidden = false;
  replaceChildren(login, h('p', {role: 'status', text: t('login.checking')}));
  try {
    session.keep(await redeemLoginCode(code));
    return true;
  } catch (failure) {
    showLogin(() => t('login.link_failed', {reason: reasonOf(failure)}));
    return false;
  }
}

// A login link opened in a tab that already shows the screen only changes the fragment.
async function onHashChange() {
  const code = takeLoginCode();
  if (code === null) return;
  // Whoever was signed in here leaves for good: their token must not stay valid unseen.
  if (session.signedIn()) await signOutAndRevoke();
  if (await signInWithCode(code)) await enter();
}

async function start() {
  labelShell();
  setupLanguage();
  $('sign-out').addEventListener('click', () => signOutAndRevoke());
  window.addEventListener('hashchange', onHashChange);

  const code = takeLoginCode();
  if (code !== null && !(await signInWithCode(code))) return;
  if (!session.signedIn()) {
    showLogin();
    return;
  }
  try {
    await api.get('/me');
  } catch (failure) {
    if (failure.status === 401) {
      session.forget();
      showLogin(() => t('login.expired'));
      return;
    }
    // The host is not answering yet: show the screen; it fills in when the host is back.
  }
  await enter();
}

start();
