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
// bookmarked, kept in history, nor shown to someone looking at the screen.
export function takeLoginCode() {
  const match = /^#login=([^&]+)$/.exec(window.location.hash);
  if (!match) return null;
  history.replaceState(null, '', window.location.pathname + window.location.search);
  return decodeURIComponent(match[1]);
}
