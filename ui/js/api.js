// The control API over fetch, with the bearer token on every call. A 401 means the token is
// gone or revoked: the screen goes back to the sign-in form and shows no data.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(session, onUnauthorized) {
    this.session = session;
    this.onUnauthorized = onUnauthorized;
  }

  get(path) { return this.call('GET', path); }
  post(path, body = {}) { return this.call('POST', path, body); }
  delete(path) { return this.call('DELETE', path); }

  async call(method, path, body) {
    const response = await this.send(method, path, body);
    const text = await response.text();
    const json = text ? JSON.parse(text) : {};
    if (!response.ok) throw this.failure(response.status, json);
    return json;
  }

  // Images behind the token (the QR code): an <img> cannot send a header, so the bytes are
  // fetched here and shown through an object URL.
  async blob(path) {
    const response = await this.send('GET', path);
    if (!response.ok) {
      const json = await response.json().catch(() => ({}));
      throw this.failure(response.status, json);
    }
    return response.blob();
  }

  async send(method, path, body) {
    const token = this.session.token() ?? '';
    // A header can carry only Latin-1; fetch would refuse anything else as if the network
    // failed. Tokens are plain ASCII, so anything else is the token's fault, said as such.
    if (!isTokenText(token)) throw new ApiError(0, 'token_text', 'the token has invalid characters');
    const headers = {Authorization: `Bearer ${token}`};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(`/api/v1${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, 'network', error.message);
    }
    if (response.status === 401) this.onUnauthorized();
    return response;
  }

  failure(status, json) {
    const error = json && json.error ? json.error : {};
    return new ApiError(status, error.code ?? 'http_' + status, error.message ?? `HTTP ${status}`);
  }
}

// What a token can be made of: visible ASCII characters, no spaces (tokens are "cht_" and
// URL-safe base64).
export function isTokenText(text) {
  return /^[\x21-\x7e]*$/.test(text);
}

// Signing in needs no token: it turns the one-time code of a login link into one.
export async function redeemLoginCode(code) {
  let response;
  try {
    response = await fetch('/api/v1/auth/login-link', {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({code}), cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', error.message);
  }
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = json.error ?? {};
    throw new ApiError(response.status, error.code ?? 'http', error.message ?? `HTTP ${response.status}`);
  }
  return json.token;
}
