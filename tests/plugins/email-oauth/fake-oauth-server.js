#!/usr/bin/env node
// A small OAuth2 authorisation server of our own, for the email-oauth tests, on 127.0.0.1 only.
// No npm packages: Node's http and crypto.
//
//   node fake-oauth-server.js PORT_FILE USER_EMAIL CLIENT_ID CLIENT_SECRET [CERT KEY]
//
// Writes the port it listens on into PORT_FILE. With CERT and KEY it also runs, on the port
// written into PORT_FILE.smtps, an SMTP server with implicit TLS that answers every AUTH as a
// Microsoft 365 tenant with SMTP AUTH disabled does (535 5.7.139). Endpoints:
//   GET  /authorize     consent auto-granted for USER_EMAIL; 302 to redirect_uri?code&state
//   POST /token         authorization_code (client, redirect_uri, PKCE S256 checked; one use)
//                       and refresh_token (rotates: the old refresh token stops working; a
//                       `scope` narrows the new access token to granted scopes)
//   GET  /{tenant}/oauth2/v2.0/authorize, POST /{tenant}/oauth2/v2.0/token
//                       the same, playing Microsoft: the ID token names the mailbox in
//                       preferred_username only, and an access token covers one resource (the
//                       first one asked for): a Graph token needs a refresh with Graph's scope
//   POST /revoke        RFC 7009
//   POST /introspect    RFC 7662, for Dovecot's oauth2 passdb: {active, username, scope, exp}
//   GET  /userinfo      {email}
//   POST /graph/v1.0/me/sendMail   a fake of Microsoft Graph sendMail: base64 MIME as text/plain,
//                       the bearer token checked (401 unknown or expired, 403 without Mail.Send),
//                       the MIME recorded, and with graph_relay_port set handed to that SMTP
//                       port (Postfix) for every To, Cc and Bcc address, Bcc header removed
//   POST /control       switches: {"revoke_refresh_tokens":true, "wrong_scope":true,
//                       "expire_codes":true, "delay_ms":N (token endpoint), "access_ttl_s":N,
//                       "expire_access_tokens":true, "withhold_scopes":[...] (never granted),
//                       "graph_status":N (Graph answers N), "graph_relay_port":N,
//                       "refresh_failure":{status,error} (refreshes answer that),
//                       "exchange_patch":{...} (merged into the code exchange's answer),
//                       "exchange_raw":"text", "exchange_raw_times":N (the code exchange
//                       answers HTTP 200 with that text N times over instead),
//                       "id_email":"..." (the ID token's email claim),
//                       "expires_in_raw":"digits" (the exchange's expires_in, as written)}
//   GET  /control       counters, tenants asked, recorded Graph mails
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');

const [portFile, userEmail, clientId, clientSecret, certFile, keyFile] = process.argv.slice(2);
const SCOPE_OK = 'https://mail.google.com/';

const codes = new Map();     // code -> {challenge, redirect_uri, scope, expires, used}
const access = new Map();    // token -> {expires, scope}
const refresh = new Map();   // token -> {active, scope}
const switches = {revoke_refresh_tokens: false, wrong_scope: false, expire_codes: false,
                  delay_ms: 0, access_ttl_s: 3600, withhold_scopes: [], graph_status: 0,
                  graph_relay_port: 0, refresh_failure: null, exchange_patch: null,
                  exchange_raw: null, exchange_raw_times: 1, id_email: null,
                  expires_in_raw: null};
const seen = {exchanges: 0, refreshes: 0, introspections: 0, revocations: 0, graph_mails: [],
              graph_calls: 0, graph_refused: 0, tenants: [], refresh_scopes: [],
              issued: []};  // every token handed out, for the 'no secret leaked' checks
const GRAPH_SEND = 'https://graph.microsoft.com/Mail.Send';

const random = () => crypto.randomBytes(24).toString('base64url');
const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
                         ...headers});
  res.end(text);
}

function oauthError(res, error, description) {
  send(res, 400, {error, error_description: description});
}

const scopesOf = (text) => String(text || '').split(/\s+/).filter((s) => s);
const resourceOf = (scope) => (/^https:\/\/[^/]+/.exec(scope) || [''])[0];

// The scopes one access token carries: those the grant holds and the admin did not withhold; as
// Microsoft does, only the first resource's (plus the plain OpenID ones).
function accessScope(scopes, microsoft) {
  let kept = scopes.filter((s) => !switches.withhold_scopes.includes(s));
  if (microsoft) {
    const first = kept.map(resourceOf).find((r) => r);
    kept = kept.filter((s) => !resourceOf(s) || resourceOf(s) === first);
  }
  return kept.join(' ');
}

// `grant` is the whole consented scope (kept with the refresh token); `asked` what this token
// is for.
function issueTokens(grant, asked, withIdToken, microsoft, tenant) {
  const accessToken = 'at-' + random();
  const refreshToken = 'rt-' + random();
  const ttl = switches.access_ttl_s;
  const scope = accessScope(scopesOf(asked), microsoft);
  access.set(accessToken, {expires: Date.now() + ttl * 1000,
                           scope: switches.wrong_scope ? 'openid' : scope});
  refresh.set(refreshToken, {active: true, scope: grant, microsoft, tenant});
  seen.issued.push(accessToken, refreshToken);
  const answer = {token_type: 'Bearer', access_token: accessToken, refresh_token: refreshToken,
                  expires_in: ttl, scope};
  if (withIdToken) {
    const claims = microsoft
        ? {iss: 'https://login.microsoftonline.com/' + tenant + '/v2.0', tid: tenant,
           preferred_username: userEmail, name: 'Support Agent'}
        : {iss: 'fake', email: switches.id_email === null ? userEmail : switches.id_email};
    answer.id_token = b64url({alg: 'none'}) + '.' +
        b64url({sub: 'user-1', aud: clientId, exp: Math.floor(Date.now() / 1000) + 3600,
                ...claims}) + '.';
  }
  return answer;
}

function clientOk(form) {
  return form.get('client_id') === clientId && form.get('client_secret') === clientSecret;
}

function token(res, form, tenant) {
  if (!clientOk(form)) return oauthError(res, 'invalid_client', 'unknown client or wrong secret');
  const grant = form.get('grant_type');
  if (grant === 'authorization_code') {
    seen.exchanges++;
    const entry = codes.get(form.get('code'));
    if (!entry) return oauthError(res, 'invalid_grant', 'unknown authorization code');
    if (entry.used) return oauthError(res, 'invalid_grant', 'authorization code already used');
    entry.used = true;
    if (switches.expire_codes || Date.now() > entry.expires) {
      return oauthError(res, 'invalid_grant', 'authorization code expired');
    }
    if (entry.redirect_uri !== form.get('redirect_uri')) {
      return oauthError(res, 'invalid_grant', 'redirect_uri does not match');
    }
    const verifier = form.get('code_verifier') || '';
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    if (challenge !== entry.challenge) {
      return oauthError(res, 'invalid_grant', 'PKCE verification failed');
    }
    if (switches.exchange_raw !== null) {
      res.writeHead(200, {'Content-Type': 'application/json'});
      return res.end(switches.exchange_raw.repeat(switches.exchange_raw_times));
    }
    const answer = issueTokens(entry.scope, entry.scope, true, !!tenant, tenant);
    const text = JSON.stringify({...answer, ...(switches.exchange_patch || {})});
    // JavaScript numbers cannot hold every JSON number: this one goes in as written.
    return send(res, 200, switches.expires_in_raw === null ? JSON.parse(text)
                    : text.replace(/"expires_in":\d+/, '"expires_in":' + switches.expires_in_raw));
  }
  if (grant === 'refresh_token') {
    seen.refreshes++;
    if (switches.refresh_failure) {
      return send(res, switches.refresh_failure.status,
                  {error: switches.refresh_failure.error,
                   error_description: 'switched on by the test'});
    }
    const entry = refresh.get(form.get('refresh_token'));
    if (!entry || !entry.active || switches.revoke_refresh_tokens) {
      return oauthError(res, 'invalid_grant', 'Token has been expired or revoked.');
    }
    const asked = form.get('scope');
    seen.refresh_scopes.push(asked || '');
    if (asked) {
      const granted = scopesOf(entry.scope);
      const missing = scopesOf(asked).filter((s) => !granted.includes(s));
      if (missing.length > 0) {
        return oauthError(res, 'invalid_grant', 'AADSTS65001: The user or administrator has ' +
                          'not consented to use the application (' + missing.join(' ') + ')');
      }
    }
    entry.active = false;  // rotation: every refresh token works once
    return send(res, 200, issueTokens(entry.scope, asked || entry.scope, false, entry.microsoft,
                                      entry.tenant));
  }
  return oauthError(res, 'unsupported_grant_type', String(grant));
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const form = new URLSearchParams(body);
  const bearer = (req.headers.authorization || '').replace(/^Bearer /, '');
  // Microsoft's endpoints carry the tenant: /{tenant}/oauth2/v2.0/authorize and …/token.
  const microsoft = /^\/([^/]+)\/oauth2\/v2\.0\/(authorize|token)$/.exec(url.pathname);
  const tenant = microsoft ? microsoft[1] : '';
  if (microsoft) seen.tenants.push(tenant);
  const endpoint = microsoft ? '/' + microsoft[2] : url.pathname;
  if (endpoint === '/authorize' && req.method === 'GET') {
    const q = url.searchParams;
    const redirect = q.get('redirect_uri');
    if (q.get('client_id') !== clientId || !redirect) return send(res, 400, 'bad client');
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
      return send(res, 400, 'PKCE S256 required');
    }
    const code = 'code-' + random();
    codes.set(code, {challenge: q.get('code_challenge'), redirect_uri: redirect,
                     scope: q.get('scope') || '', expires: Date.now() + 60000, used: false});
    const to = new URL(redirect);
    to.searchParams.set('code', code);
    to.searchParams.set('state', q.get('state') || '');
    return send(res, 302, '', {Location: to.toString()});
  }
  if (endpoint === '/token' && req.method === 'POST') return token(res, form, tenant);
  if (url.pathname === '/revoke' && req.method === 'POST') {
    seen.revocations++;
    const t = form.get('token');
    if (refresh.has(t)) refresh.get(t).active = false;
    access.delete(t);
    return send(res, 200, {});
  }
  if (url.pathname === '/introspect' && req.method === 'POST') {
    seen.introspections++;
    const t = form.get('token') || bearer;
    const entry = access.get(t);
    if (!entry || Date.now() >= entry.expires) return send(res, 200, {active: false});
    return send(res, 200, {active: true, username: userEmail, scope: entry.scope,
                           exp: Math.floor(entry.expires / 1000), client_id: clientId});
  }
  if (url.pathname === '/userinfo' && req.method === 'GET') {
    const entry = access.get(bearer);
    if (!entry || Date.now() >= entry.expires) return send(res, 401, {error: 'invalid_token'});
    return send(res, 200, {email: userEmail, email_verified: true});
  }
  if (url.pathname === '/graph/v1.0/me/sendMail' && req.method === 'POST') {
    seen.graph_calls++;
    const entry = access.get(bearer);
    if (!entry || Date.now() >= entry.expires) {
      seen.graph_refused++;
      return send(res, 401, {error: {code: 'InvalidAuthenticationToken',
                                     message: 'Lifetime validation failed, the token is expired.'}});
    }
    if (!scopesOf(entry.scope).includes(GRAPH_SEND)) {
      return send(res, 403, {error: {code: 'ErrorAccessDenied',
                                     message: 'Access is denied. Check credentials and try again.'}});
    }
    if (switches.graph_status === 429) {
      return send(res, 429, {error: {code: 'ApplicationThrottled',
                                     message: 'Application is over its MailboxConcurrency limit.'}},
                  {'Retry-After': '30'});
    }
    if (switches.graph_status >= 400) {
      return send(res, switches.graph_status,
                  {error: {code: 'ServiceUnavailable', message: 'Service unavailable.'}});
    }
    if (!/^text\/plain/.test(req.headers['content-type'] || '')) {
      return send(res, 400, {error: {code: 'RequestBodyRead', message: 'expected JSON'}});
    }
    const mime = Buffer.from(body, 'base64').toString('utf8');
    seen.graph_mails.push(mime);
    if (!switches.graph_relay_port) {
      res.writeHead(202);
      return res.end();
    }
    const {recipients, delivered} = graphDelivery(mime);
    relay(switches.graph_relay_port, userEmail, recipients, delivered).then(() => {
      res.writeHead(202);
      res.end();
    }, (e) => send(res, 503, {error: {code: 'ErrorMailTransport', message: String(e.message)}}));
    return;
  }
  if (url.pathname === '/control') {
    if (req.method === 'POST') {
      const change = JSON.parse(body || '{}');
      if (change.expire_access_tokens) {
        for (const entry of access.values()) entry.expires = 0;
        delete change.expire_access_tokens;
      }
      Object.assign(switches, change);
    }
    return send(res, 200, {switches, ...seen});
  }
  send(res, 404, {error: 'not_found'});
}

// What Exchange does with a MIME message sent through Graph: every address in To, Cc and Bcc
// receives it, and the delivered copy has no Bcc header.
function graphDelivery(mime) {
  const split = mime.indexOf('\r\n\r\n');
  const head = mime.slice(0, split);
  const lines = head.split('\r\n');
  const fields = [];  // [name, value, raw lines]
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1][1] += ' ' + line.trim();
      fields[fields.length - 1][2].push(line);
    } else {
      const colon = line.indexOf(':');
      fields.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1), [line]]);
    }
  }
  const recipients = [];
  for (const [name, value] of fields) {
    if (['to', 'cc', 'bcc'].includes(name)) {
      for (const a of value.match(/[^\s<>,"]+@[^\s<>,"]+/g) || []) recipients.push(a);
    }
  }
  const kept = fields.filter(([name]) => name !== 'bcc').flatMap(([, , raw]) => raw);
  return {recipients, delivered: kept.join('\r\n') + mime.slice(split)};
}

// A minimal SMTP client: hands one message to 127.0.0.1:port.
function relay(port, from, recipients, message) {
  return new Promise((resolve, reject) => {
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    const steps = ['EHLO graph.fake', `MAIL FROM:<${from}>`,
                   ...recipients.map((r) => `RCPT TO:<${r}>`), 'DATA',
                   body + (body.endsWith('\r\n') ? '' : '\r\n') + '.', 'QUIT'];
    let next = 0;
    let buffer = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let m;
      while ((m = /^(\d{3})([ -])(.*)\r\n/.exec(buffer))) {
        buffer = buffer.slice(m[0].length);
        if (m[2] === '-') continue;
        if (Number(m[1]) >= 400) {
          socket.destroy();
          return reject(new Error(m[0].trim()));
        }
        if (next < steps.length) {
          socket.write(steps[next++] + '\r\n');
        } else {
          socket.end();
          return resolve();
        }
      }
    });
    socket.on('error', reject);
  });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const answer = () => {
      try {
        handle(req, res, body);
      } catch (e) {
        send(res, 500, {error: 'server_error', error_description: String(e)});
      }
    };
    // Only the token endpoint waits when asked to (a provider slow to exchange or refresh).
    if (switches.delay_ms > 0 && req.url.startsWith('/token')) {
      setTimeout(answer, switches.delay_ms);
    } else {
      answer();
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port));
  fs.renameSync(portFile + '.tmp', portFile);
});

// A Microsoft 365 SMTP endpoint of a tenant that turned SMTP AUTH off.
if (certFile && keyFile) {
  const tls = require('tls');
  const smtps = tls.createServer({cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile)},
                                 (socket) => {
    socket.write('220 fake-outlook ESMTP\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const verb = line.split(' ')[0].toUpperCase();
        if (verb === 'EHLO') {
          socket.write('250-fake-outlook\r\n250-AUTH LOGIN XOAUTH2\r\n250 8BITMIME\r\n');
        } else if (verb === 'AUTH') {
          socket.write('535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is ' +
                       'disabled for the Tenant.\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
        } else {
          socket.write('503 bad sequence\r\n');
        }
      }
    });
    socket.on('error', () => {});
  });
  smtps.listen(0, '127.0.0.1', () => {
    fs.writeFileSync(portFile + '.smtps.tmp', String(smtps.address().port));
    fs.renameSync(portFile + '.smtps.tmp', portFile + '.smtps');
  });
}
