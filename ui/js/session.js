// Where the API token lives in the browser.
//
// sessionStorage, not localStorage: the token is a long-lived bearer credential and attendants
// often share a workstation, so it should not outlive the tab. It survives reloads and host
// restarts (the WebSocket reconnects with it), but a new tab or a closed browser asks to sign in
// again (a new login link from `connector-host login-link`, or a pasted token).
const kTokenKey = 'connector.token';

export class Session {
  token() { return sessionStorage.getItem(kTokenKey); }
  signedIn() { return Boolean(this.token()); }
  keep(token) { sessionStorage.setItem(kTokenKey, token); }
  forget() { sessionStorage.removeItem(kTokenKey); }
}

// Reads "#login=CODE" and removes it from the address bar at once, so the code is neither
// bookmarked, kept in history, nor shown to someone looking at the screen. Returns null when the
// address holds no login link, and '' for one that is cut short or mangled (empty, badly
// %-encoded, with something after the code): the caller says that link did not work.
export function takeLoginCode() {
  const hash = window.location.hash;
  if (!hash.startsWith('#login=')) return null;
  history.replaceState(null, '', window.location.pathname + window.location.search);
  return codeOf(hash.slice('#login='.length));
}

// The code of a login link's fragment, or '' when it is not one a host gives.
function codeOf(fragment) {
  let code;
  try {
    code = decodeURIComponent(fragment);
  } catch {
    return '';
  }
  // Codes the host makes are a few dozen characters; it refuses anything over 200 bytes.
  return /^[A-Za-z0-9_-]{1,200}$/.test(code) ? code : '';
}

// The code of a whole login link pasted where a token goes ("http://…/#login=CODE"), or null.
export function loginCodeInText(text) {
  const at = text.indexOf('#login=');
  if (at < 0) return null;
  return codeOf(text.slice(at + '#login='.length).trim());
}
