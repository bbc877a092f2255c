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
//                       and refresh_token (rotates: the old refresh token stops working)
//   POST /revoke        RFC 7009
//   POST /introspect    RFC 7662, for Dovecot's oauth2 passdb: {active, username, scope, exp}
//   GET  /userinfo      {email}
//   POST /graph/me/sendMail   a fake of Microsoft Graph sendMail (records the MIME message)
//   POST /control       switches: {"revoke_refresh_tokens":true, "wrong_scope":true,
//                       "expire_codes":true, "delay_ms":N (token endpoint), "access_ttl_s":N,
//                       "expire_access_tokens":true}
//   GET  /control       counters and recorded Graph mails
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const [portFile, userEmail, clientId, clientSecret, certFile, keyFile] = process.argv.slice(2);
const SCOPE_OK = 'https://mail.google.com/';

const codes = new Map();     // code -> {challenge, redirect_uri, scope, expires, used}
const access = new Map();    // token -> {expires, scope}
const refresh = new Map();   // token -> {active, scope}
const switches = {revoke_refresh_tokens: false, wrong_scope: false, expire_codes: false,
                  delay_ms: 0, access_ttl_s: 3600};
const seen = {exchanges: 0, refreshes: 0, introspections: 0, revocations: 0, graph_mails: [],
              issued: []};  // every token handed out, for the 'no secret leaked' checks

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

function issueTokens(scope, withIdToken) {
  const accessToken = 'at-' + random();
  const refreshToken = 'rt-' + random();
  const ttl = switches.access_ttl_s;
  access.set(accessToken, {expires: Date.now() + ttl * 1000,
                           scope: switches.wrong_scope ? 'openid' : scope});
  refresh.set(refreshToken, {active: true, scope});
  seen.issued.push(accessToken, refreshToken);
  const answer = {token_type: 'Bearer', access_token: accessToken, refresh_token: refreshToken,
                  expires_in: ttl, scope};
  if (withIdToken) {
    answer.id_token = b64url({alg: 'none'}) + '.' +
        b64url({iss: 'fake', sub: 'user-1', aud: clientId, email: userEmail,
                exp: Math.floor(Date.now() / 1000) + 3600}) + '.';
  }
  return answer;
}

function clientOk(form) {
  return form.get('client_id') === clientId && form.get('client_secret') === clientSecret;
}

function token(res, form) {
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
    return send(res, 200, issueTokens(entry.scope, true));
  }
  if (grant === 'refresh_token') {
    seen.refreshes++;
    const entry = refresh.get(form.get('refresh_token'));
    if (!entry || !entry.active || switches.revoke_refresh_tokens) {
      return oauthError(res, 'invalid_grant', 'Token has been expired or revoked.');
    }
    entry.active = false;  // rotation: every refresh token works once
    return send(res, 200, issueTokens(entry.scope, false));
  }
  return oauthError(res, 'unsupported_grant_type', String(grant));
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const form = new URLSearchParams(body);
  const bearer = (req.headers.authorization || '').replace(/^Bearer /, '');
  if (url.pathname === '/authorize' && req.method === 'GET') {
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
  if (url.pathname === '/token' && req.method === 'POST') return token(res, form);
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
  if (url.pathname === '/graph/me/sendMail' && req.method === 'POST') {
    const entry = access.get(bearer);
    if (!entry || Date.now() >= entry.expires) {
      return send(res, 401, {error: {code: 'InvalidAuthenticationToken', message: 'expired'}});
    }
    seen.graph_mails.push(Buffer.from(body, 'base64').toString('utf8'));
    res.writeHead(202);
    return res.end();
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
