// Test OpenID provider for authctl end-to-end tests.
//
//   node tests/idp/server.mjs
//
// Environment:
//   IDP_PORT               port to bind on 127.0.0.1 (default 0 = OS-assigned)
//   IDP_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 3600)
//   IDP_REFRESH_TOKEN_TTL  refresh token lifetime in seconds (default 86400)
//   IDP_DEVICE_CODE_TTL    device code lifetime in seconds (default 600); the device
//                          authorization response's expires_in says the same
//   IDP_ISS_PARAMETER      0 turns RFC 9207 off: no authorization_response_iss_parameter_supported
//                          in discovery, no `iss` in authorization responses (default 1)
//   IDP_EXTRA_SCOPES       N more scopes `x-1` … `x-N` the provider knows and grants (default 0),
//                          for tests that need many distinct downscoped keys
//
// When ready, prints exactly one line to stdout:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and runs until SIGTERM/SIGINT. Everything else goes to stderr.
//
// Test control endpoints (JSON in/out), handled before the provider:
//   GET  /__test/counters    token-endpoint requests per grant_type, revocation, introspection,
//                            registration (POST /reg), mcp {ok, unauthorized, metadata}
//   POST /__test/faults      {"faults":[...]} queue faults for the next token-endpoint requests
//                            (see FAULT_KEYS; {"id_token":"bad_signature"|"wrong_aud"|
//                            "wrong_nonce"|"expired"|"wrong_iss"|"alg_none"|"hs256_public_key"|
//                            "rotated_key"} forges the response's ID token; `repeat: true` keeps a
//                            fault queued for every later matching request)
//   POST /__test/reset       clear faults and counters (and undo rotate-keys)
//   POST /__test/rotate-keys  publish a second signing key (kid authctl-test-rs256-2) in the JWKS
//                            beside the first, as a provider rotating its keys does; the
//                            `rotated_key` ID-token fault signs with it
//   POST /__test/introspect  {"token":"..."} -> {"active":bool,...} from the provider's store
//
// Protected resources (RFC 9728, MCP style) on the same server:
//   GET /mcp          401 + WWW-Authenticate: Bearer resource_metadata="<issuer>/.well-known/
//                     oauth-protected-resource/mcp", scope="mcp:read" without a valid bearer;
//                     200 {"ok":true,"sub":..,"aud":..,"scope":..,"client_id":..} with an access
//                     token issued for resource=<issuer>/mcp (JWT, verified by signature)
//   GET /mcp-plain    the same for resource <issuer>/mcp-plain, but its 401 carries a bare
//                     `WWW-Authenticate: Bearer` (clients must try the well-known URL themselves)
//   GET /.well-known/oauth-protected-resource/mcp[-plain]   the resource metadata
//   GET /.well-known/oauth-authorization-server              RFC 8414 alias of the discovery doc
//   http://127.0.0.1:ANY/mcp  accepted as a resource indicator too (JWT access tokens), for the
//                     MCP servers of tests/mcp
// Dynamic client registration (RFC 7591) is open at POST /reg.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

// oidc-provider prints NOTICEs with console.info (stdout). stdout carries only
// the ready line, so route every console method to stderr before loading it.
for (const m of ['log', 'info', 'debug']) {
  console[m] = (...args) => console.error(...args);
}

const { default: Provider, errors } = await import('oidc-provider');

const log = (...args) => console.error('[idp]', ...args);

function envInt(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    log(`invalid ${name}=${raw}`);
    process.exit(2);
  }
  return n;
}

function envBool(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  log(`invalid ${name}=${raw}`);
  process.exit(2);
}

const PORT = envInt('IDP_PORT', 0);
const ACCESS_TOKEN_TTL = envInt('IDP_ACCESS_TOKEN_TTL', 3600) || 3600;
const REFRESH_TOKEN_TTL = envInt('IDP_REFRESH_TOKEN_TTL', 86400) || 86400;
const DEVICE_CODE_TTL = envInt('IDP_DEVICE_CODE_TTL', 600) || 600;
const ISS_PARAMETER = envBool('IDP_ISS_PARAMETER', true);
const EXTRA_SCOPES = Array.from({ length: envInt('IDP_EXTRA_SCOPES', 0) }, (_, i) => `x-${i + 1}`);

// ---------------------------------------------------------------------------
// Signing keys: the provider's real RS256 key (explicit, so that this file can sign and verify
// with it too), and a stranger's key for forged signatures.

const SIGNING_KID = 'authctl-test-rs256';

function generateRsaJwk(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

const SIGNING_JWK = generateRsaJwk(SIGNING_KID);
const SIGNING_KEY = crypto.createPrivateKey({ key: SIGNING_JWK, format: 'jwk' });
const VERIFY_KEY = crypto.createPublicKey(SIGNING_KEY);
const FORGER_KEY = crypto.createPrivateKey({ key: generateRsaJwk(SIGNING_KID), format: 'jwk' });
// The key a rotation brings in (POST /__test/rotate-keys publishes it), made on first use so
// that a start pays for no third key.
const ROTATED_KID = 'authctl-test-rs256-2';
let rotated;
function rotatedKey() {
  if (!rotated) {
    const jwk = generateRsaJwk(ROTATED_KID);
    rotated = { jwk, key: crypto.createPrivateKey({ key: jwk, format: 'jwk' }) };
  }
  return rotated;
}
let keysRotated = false;

function publicJwk(jwk) {
  const pub = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' });
  return { ...pub, kid: jwk.kid, alg: 'RS256', use: 'sig' };
}

// The JWKS while rotated: both public keys.
function rotatedJwks() {
  return { keys: [publicJwk(SIGNING_JWK), publicJwk(rotatedKey().jwk)] };
}

function b64json(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
}

function signJwt(header, payload, key) {
  const input = `${b64json(header)}.${b64json(payload)}`;
  const sig = crypto.sign('sha256', Buffer.from(input, 'ascii'), key); // RSASSA-PKCS1-v1_5
  return `${input}.${sig.toString('base64url')}`;
}

// HS256 keyed with `secret` (the algorithm-confusion attack keys it with a public key).
function hmacJwt(header, payload, secret) {
  const input = `${b64json(header)}.${b64json(payload)}`;
  const sig = crypto.createHmac('sha256', secret).update(input, 'ascii').digest('base64url');
  return `${input}.${sig}`;
}

function decodeJwtPart(part) {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

// Verifies an RS256 JWT signed with the provider's key: its payload, or a reason string.
function verifyProviderJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return { error: 'not a JWT' };
  const header = decodeJwtPart(parts[0]);
  const payload = decodeJwtPart(parts[1]);
  if (!header || !payload) return { error: 'malformed JWT' };
  if (header.alg !== 'RS256') return { error: `unexpected alg ${header.alg}` };
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), VERIFY_KEY,
    Buffer.from(parts[2], 'base64url'));
  if (!ok) return { error: 'bad signature' };
  return { header, payload };
}

// ---------------------------------------------------------------------------
// Accounts

const ACCOUNTS = {
  alice: {
    password: 'alice-password',
    claims: {
      sub: 'alice',
      email: 'alice@example.test',
      email_verified: true,
      name: 'Alice Example',
      preferred_username: 'alice',
    },
  },
  bob: {
    password: 'bob-password',
    claims: {
      sub: 'bob',
      email: 'bob@example.test',
      email_verified: true,
      name: 'Bob Example',
      preferred_username: 'bob',
    },
  },
};

async function findAccount(_ctx, sub) {
  const account = ACCOUNTS[sub];
  if (!account) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { ...account.claims };
    },
  };
}

// ---------------------------------------------------------------------------
// Clients

const LOOPBACK_CALLBACKS = [
  'http://127.0.0.1/callback',
  'http://[::1]/callback',
  'http://localhost/callback',
];
const LOOPBACK_LOGOUTS = [
  'http://127.0.0.1/logout',
  'http://[::1]/logout',
  'http://localhost/logout',
];
const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
];

const CLIENTS = [
  {
    client_id: 'authctl-native',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: LOOPBACK_CALLBACKS,
    post_logout_redirect_uris: LOOPBACK_LOGOUTS,
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    client_id: 'authctl-fixed',
    application_type: 'web',
    token_endpoint_auth_method: 'none',
    redirect_uris: [
      'http://127.0.0.1:18765/callback',
      'http://127.0.0.1:18766/callback',
    ],
    post_logout_redirect_uris: [
      'http://127.0.0.1:18765/logout',
      'http://127.0.0.1:18766/logout',
    ],
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    client_id: 'authctl-basic',
    client_secret: 'basic-secret',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: LOOPBACK_CALLBACKS,
    post_logout_redirect_uris: LOOPBACK_LOGOUTS,
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    client_id: 'authctl-post',
    client_secret: 'post-secret',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_post',
    redirect_uris: LOOPBACK_CALLBACKS,
    post_logout_redirect_uris: LOOPBACK_LOGOUTS,
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
];

// ---------------------------------------------------------------------------
// HTML helpers

function esc(s) {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function readBody(req, limit = 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// Interactions (login + consent), replacing the dev interactions

function loginPage(uid, params, error) {
  const client = esc(params.client_id);
  return page('Sign-in', `
<p>Sign in to continue to <strong>${client}</strong>.</p>
${error ? `<p class="error" id="login-error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" id="login-form">
  <label>Username <input type="text" name="login" autocomplete="username" autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit" name="submit" value="login">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort" id="abort-form">
  <button type="submit" name="abort" value="yes">Cancel</button>
</form>
`);
}

function consentPage(uid, params, details, accountId) {
  const scopes = [
    ...(details.missingOIDCScope || []),
    ...Object.values(details.missingResourceScopes || {}).flat(),
  ];
  return page('Authorize', `
<p><strong>${esc(params.client_id)}</strong> asks for access to the account of <strong>${esc(accountId)}</strong>.</p>
<ul id="scopes">${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${esc(uid)}/confirm" id="approve-form">
  <button type="submit" name="approve" value="yes">Approve</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort" id="deny-form">
  <button type="submit" name="deny" value="yes">Deny</button>
</form>
`);
}

async function handleInteraction(provider, req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?\/?$/);
  if (!m) return sendHtml(res, 404, page('Not found', '<p>Unknown interaction route.</p>'));
  const [, uid, action] = m;

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    log('interaction lookup failed:', err.message);
    return sendHtml(res, 400, page('Error', `<p class="error">${esc(err.message)}</p>`));
  }
  if (details.uid !== uid) {
    return sendHtml(res, 400, page('Error', '<p class="error">interaction mismatch</p>'));
  }
  const { prompt, params, session, grantId } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, params));
    if (prompt.name === 'consent') {
      return sendHtml(res, 200, consentPage(uid, params, prompt.details, session?.accountId));
    }
    return sendHtml(res, 501, page('Error', `<p>prompt ${esc(prompt.name)} not implemented</p>`));
  }

  if (req.method !== 'POST' || !action) {
    return sendHtml(res, 405, page('Error', '<p>method not allowed</p>'));
  }
  const form = querystring.parse(await readBody(req));

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'login') {
    if (prompt.name !== 'login') {
      return sendHtml(res, 400, page('Error', '<p>not a login prompt</p>'));
    }
    const login = String(form.login ?? '');
    const account = Object.hasOwn(ACCOUNTS, login) ? ACCOUNTS[login] : undefined;
    if (!account || account.password !== String(form.password ?? '')) {
      log(`login failed for ${JSON.stringify(login)}`);
      return sendHtml(res, 200, loginPage(uid, params, 'Invalid username or password.'));
    }
    return provider.interactionFinished(req, res, {
      login: { accountId: login },
    }, { mergeWithLastSubmission: false });
  }

  // action === 'confirm'
  if (prompt.name !== 'consent') {
    return sendHtml(res, 400, page('Error', '<p>not a consent prompt</p>'));
  }
  let grant;
  if (grantId) grant = await provider.Grant.find(grantId);
  if (!grant) {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  const d = prompt.details;
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(d.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  if (d.rar) for (const detail of d.rar) grant.addRar(detail);
  const newGrantId = await grant.save();
  return provider.interactionFinished(req, res, {
    consent: { grantId: newGrantId },
  }, { mergeWithLastSubmission: true });
}

// ---------------------------------------------------------------------------
// Counters and faults

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function freshCounters() {
  return {
    token: { authorization_code: 0, refresh_token: 0, [DEVICE_GRANT]: 0 },
    revocation: 0,
    introspection: 0,
    registration: 0,
    mcp: { ok: 0, unauthorized: 0, metadata: 0 },
  };
}
let counters = freshCounters();
let faults = [];

const FAULT_KEYS = new Set([
  'status', 'retry_after', 'delay_ms', 'drop', 'drop_after', 'garbage', 'status_201',
  'invalid_grant', 'error_200', 'grant_type', 'id_token',
  // Hostile answers (issues 11 and 12):
  //   huge_body_mb: N   a 200 whose JSON body is N MiB, streamed chunked (no Content-Length)
  //   error_body: {...} answer `status` (default 400) with exactly this JSON body
  //   expires_in: V     answer normally, then rewrite the response's expires_in to V (any JSON
  //                     number: 0, -5, 1e18)
  //   repeat: true      the fault stays queued: it answers every later matching request too
  'huge_body_mb', 'error_body', 'expires_in', 'repeat',
]);

// `id_token` faults: the provider answers normally, then the response's ID token is replaced by
// one where only the named property is wrong (all but bad_signature are signed with the
// provider's real key).
const ID_TOKEN_FAULTS = new Set([
  'bad_signature', 'wrong_aud', 'wrong_nonce', 'expired', 'wrong_iss',
  // alg_none: `alg: none`, no signature. hs256_public_key: HS256 keyed with the provider's public
  // key (PEM), the algorithm-confusion attack. rotated_key: signed by the key of rotate-keys,
  // under its own kid.
  'alg_none', 'hs256_public_key', 'rotated_key',
]);

function validateFault(f) {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return 'fault must be an object';
  for (const k of Object.keys(f)) if (!FAULT_KEYS.has(k)) return `unknown fault key ${k}`;
  if ('status' in f && !(Number.isInteger(f.status) && f.status >= 100 && f.status <= 599)) {
    return 'status must be an integer 100..599';
  }
  if ('delay_ms' in f && !(Number.isFinite(f.delay_ms) && f.delay_ms >= 0)) return 'delay_ms must be >= 0';
  if ('id_token' in f && !ID_TOKEN_FAULTS.has(f.id_token)) {
    return `id_token must be one of ${[...ID_TOKEN_FAULTS].join(', ')}`;
  }
  if ('huge_body_mb' in f && !(Number.isFinite(f.huge_body_mb) && f.huge_body_mb > 0 && f.huge_body_mb <= 1024)) {
    return 'huge_body_mb must be in (0, 1024]';
  }
  if ('error_body' in f && (f.error_body === null || typeof f.error_body !== 'object')) {
    return 'error_body must be a JSON object or array';
  }
  if ('expires_in' in f && typeof f.expires_in !== 'number') return 'expires_in must be a number';
  return undefined;
}

// Returns the forged replacement of `idToken` for fault `kind`.
function forgeIdToken(idToken, kind) {
  const parts = String(idToken).split('.');
  const header = decodeJwtPart(parts[0]);
  const payload = decodeJwtPart(parts[1]);
  if (parts.length !== 3 || !header || !payload) throw new Error('provider ID token is not a JWT');
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...payload };
  let key = SIGNING_KEY;
  switch (kind) {
    case 'bad_signature':
      key = FORGER_KEY; // same header (kid, alg), a stranger's key
      break;
    case 'wrong_aud':
      claims.aud = 'some-other-client';
      delete claims.azp;
      break;
    case 'wrong_nonce':
      claims.nonce = `forged-${crypto.randomBytes(8).toString('hex')}`;
      break;
    case 'expired':
      // Far beyond any clock skew allowance.
      claims.iat = now - 7200;
      claims.exp = now - 3600;
      if (typeof claims.auth_time === 'number') claims.auth_time = Math.min(claims.auth_time, now - 7200);
      break;
    case 'wrong_iss':
      claims.iss = 'https://evil.example';
      break;
    case 'alg_none': {
      const { kid: _kid, ...rest } = header;
      return `${b64json({ ...rest, alg: 'none' })}.${b64json(claims)}.`;
    }
    case 'hs256_public_key': {
      const pem = VERIFY_KEY.export({ type: 'spki', format: 'pem' });
      return hmacJwt({ ...header, alg: 'HS256' }, claims, pem);
    }
    case 'rotated_key':
      return signJwt({ ...header, kid: ROTATED_KID }, claims, rotatedKey().key);
    default:
      throw new Error(`unknown id_token fault ${kind}`);
  }
  return signJwt(header, claims, key);
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

const STATUS_ERROR = {
  400: 'invalid_request',
  401: 'invalid_client',
  429: 'temporarily_unavailable',
  503: 'temporarily_unavailable',
};

// Returns true when the fault fully answered the request (no pass-through).
// Streams a 200 JSON body of `mb` MiB without a Content-Length (chunked), stopping when the client
// hangs up; logs how much went out.
async function sendHugeBody(req, res, mb) {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  const total = Math.floor(mb * 1024 * 1024);
  const chunk = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  let closed = false;
  res.on('close', () => { closed = true; });
  const write = (buf) => new Promise((resolve) => {
    if (res.write(buf)) resolve();
    else {
      const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
      res.on('drain', done);
      res.on('close', done);
    }
  });
  await write('{"access_token":"');
  while (sent < total && !closed && !res.destroyed) {
    await write(chunk);
    sent += chunk.length;
  }
  if (!closed && !res.destroyed) res.end('","token_type":"Bearer","expires_in":60}');
  log(`huge body: ${sent} of ${total} bytes written${closed ? ' (client hung up)' : ''}`);
}

async function applyFault(fault, req, res) {
  if (fault.delay_ms) await sleep(fault.delay_ms);
  if (fault.id_token) req.authctlIdTokenFault = fault.id_token; // applied by the Koa middleware
  if (fault.expires_in !== undefined) req.authctlExpiresIn = fault.expires_in; // likewise
  if (fault.huge_body_mb) {
    await sendHugeBody(req, res, fault.huge_body_mb);
    return true;
  }
  if (fault.error_body) {
    sendJson(res, fault.status ?? 400, fault.error_body);
    return true;
  }
  if (fault.drop) {
    req.socket.destroy();
    return true;
  }
  if (fault.garbage) {
    const body = '{"access_token":"garbage","token_type":"Bea';
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
    return true;
  }
  if (fault.invalid_grant) {
    sendJson(res, 400, { error: 'invalid_grant', error_description: 'forced by test' });
    return true;
  }
  if (fault.error_200) {
    sendJson(res, 200, { error: String(fault.error_200), error_description: 'forced by test' });
    return true;
  }
  if (fault.status !== undefined) {
    const headers = {};
    if (fault.retry_after !== undefined) headers['Retry-After'] = String(fault.retry_after);
    const error = STATUS_ERROR[fault.status] || (fault.status >= 500 ? 'server_error' : 'invalid_request');
    sendJson(res, fault.status, {
      error,
      error_description: `forced by test (status ${fault.status})`,
    }, headers);
    return true;
  }
  if (fault.status_201) {
    const orig = res.writeHead;
    res.writeHead = function writeHead(status, ...rest) {
      return orig.call(this, status === 200 ? 201 : status, ...rest);
    };
  }
  if (fault.drop_after) {
    // Let the provider process the request, then drop the connection instead of answering.
    res.writeHead = function writeHead() { req.socket.destroy(); return this; };
    res.write = function write() { return true; };
    res.end = function end() { req.socket.destroy(); return this; };
  }
  return false;
}

// ---------------------------------------------------------------------------
// Test introspection straight from the provider's store

function decodeJwtPayload(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

async function testIntrospect(provider, token) {
  if (typeof token !== 'string' || !token) return { active: false, error: 'token missing' };
  const now = Math.floor(Date.now() / 1000);

  const describe = async (kind, t) => {
    const grant = t.grantId ? await provider.Grant.find(t.grantId) : undefined;
    const expired = typeof t.exp === 'number' && t.exp <= now;
    return {
      active: !expired && !t.consumed && (!t.grantId || !!grant),
      kind,
      format: 'opaque',
      sub: t.accountId,
      client_id: t.clientId,
      scope: t.scope,
      exp: t.exp,
      iat: t.iat,
      consumed: !!t.consumed,
      expired,
      grant_active: !!grant,
      rotations: t.rotations ?? 0,
      resource: t.resource,
      aud: t.aud,
    };
  };

  const rt = await provider.RefreshToken.find(token, { ignoreExpiration: true });
  if (rt) return describe('refresh_token', rt);
  const at = await provider.AccessToken.find(token, { ignoreExpiration: true });
  if (at) return describe('access_token', at);

  const jwt = decodeJwtPayload(token);
  if (jwt && jwt.iss === provider.issuer) {
    // JWT access tokens are not stored by the provider: report their own claims.
    return {
      active: typeof jwt.exp === 'number' && jwt.exp > now,
      kind: 'access_token',
      format: 'jwt',
      sub: jwt.sub,
      client_id: jwt.client_id,
      scope: jwt.scope,
      exp: jwt.exp,
      iat: jwt.iat,
      aud: jwt.aud,
      jti: jwt.jti,
    };
  }
  return { active: false };
}

async function handleTestControl(provider, req, res, url) {
  try {
    if (url.pathname === '/__test/counters' && req.method === 'GET') {
      return sendJson(res, 200, counters);
    }
    if (url.pathname === '/__test/reset' && req.method === 'POST') {
      await readBody(req);
      counters = freshCounters();
      faults = [];
      keysRotated = false;
      return sendJson(res, 200, { ok: true });
    }
    if (url.pathname === '/__test/rotate-keys' && req.method === 'POST') {
      await readBody(req);
      keysRotated = true;
      log(`keys rotated: the JWKS now also publishes ${ROTATED_KID}`);
      return sendJson(res, 200, { ok: true, kids: rotatedJwks().keys.map((k) => k.kid) });
    }
    if (url.pathname === '/__test/faults' && req.method === 'GET') {
      return sendJson(res, 200, { faults });
    }
    if (url.pathname === '/__test/faults' && req.method === 'POST') {
      const body = JSON.parse((await readBody(req)) || '{}');
      const list = body.faults;
      if (!Array.isArray(list)) return sendJson(res, 400, { error: 'faults must be an array' });
      for (const f of list) {
        const problem = validateFault(f);
        if (problem) return sendJson(res, 400, { error: problem, fault: f });
      }
      faults.push(...list);
      return sendJson(res, 200, { ok: true, queued: faults.length });
    }
    if (url.pathname === '/__test/introspect' && req.method === 'POST') {
      const body = JSON.parse((await readBody(req)) || '{}');
      return sendJson(res, 200, await testIntrospect(provider, body.token));
    }
    return sendJson(res, 404, { error: 'unknown test endpoint' });
  } catch (err) {
    log('test control error:', err);
    return sendJson(res, 400, { error: String(err.message || err) });
  }
}

// ---------------------------------------------------------------------------
// Server

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const API_RESOURCE = `${issuer}/api`;

// MCP-style protected resources (RFC 9728): path -> whether its 401 names the metadata URL.
const MCP_SCOPES = ['mcp:read', 'mcp:write'];
const MCP_RESOURCES = new Map([
  ['/mcp', { hint: true }],
  ['/mcp-plain', { hint: false }],
]);
const PRM_PREFIX = '/.well-known/oauth-protected-resource';

function resourceServerInfo(indicator) {
  for (const path of MCP_RESOURCES.keys()) {
    if (indicator === `${issuer}${path}`) {
      return {
        scope: MCP_SCOPES.join(' '),
        audience: indicator,
        accessTokenTTL: ACCESS_TOKEN_TTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      };
    }
  }
  if (indicator === API_RESOURCE) {
    return {
      scope: 'api:read api:write',
      audience: indicator,
      accessTokenTTL: ACCESS_TOKEN_TTL,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  }
  let u;
  try { u = new URL(indicator); } catch { return undefined; }
  // Test MCP servers of their own (tests/mcp/server.py) on a loopback port, path /mcp: JWT access
  // tokens they verify against the JWKS, audience = the resource.
  if (u.protocol === 'http:' && u.hostname === '127.0.0.1' && u.pathname === '/mcp'
      && !u.search && !u.hash) {
    return {
      scope: MCP_SCOPES.join(' '),
      audience: indicator,
      accessTokenTTL: ACCESS_TOKEN_TTL,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    };
  }
  if (u.protocol === 'https:' && (u.hostname === 'example.test' || u.hostname.endsWith('.example.test'))
      && !u.hash) {
    return {
      scope: 'api:read api:write',
      audience: indicator,
      accessTokenTTL: ACCESS_TOKEN_TTL,
      accessTokenFormat: 'opaque',
    };
  }
  return undefined;
}

const provider = new Provider(issuer, {
  clients: CLIENTS,
  jwks: { keys: [SIGNING_JWK] },
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', ...EXTRA_SCOPES],
  responseTypes: ['code'],
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
  rotateRefreshToken: true,
  cookies: { keys: ['authctl-test-idp-cookie-key'] },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        const info = resourceServerInfo(indicator);
        if (!info) throw new errors.InvalidTarget();
        return info;
      },
    },
  },
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || ACCESS_TOKEN_TTL,
    IdToken: ACCESS_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    AuthorizationCode: 60,
    DeviceCode: DEVICE_CODE_TTL,
    Interaction: 3600,
    Session: Math.max(REFRESH_TOKEN_TTL, 3600),
    Grant: Math.max(REFRESH_TOKEN_TTL, 3600),
  },
});
provider.on('server_error', (_ctx, err) => log('server_error:', err));
provider.on('grant.error', (_ctx, err) => log('grant.error:', err.message, err.error_description || ''));

const DISCOVERY_PATH = '/.well-known/openid-configuration';

// Runs inside the provider (before its router): post-processes its responses.
provider.use(async (ctx, next) => {
  await next();

  // Forged ID tokens (a token-endpoint fault with `id_token`).
  const kind = ctx.req.authctlIdTokenFault;
  if (kind) {
    const body = ctx.body;
    if (ctx.status === 200 && body && typeof body === 'object' && typeof body.id_token === 'string') {
      ctx.body = { ...body, id_token: forgeIdToken(body.id_token, kind) };
      log(`forged the ID token: ${kind}`);
    } else {
      log(`id_token fault ${kind}: the response (status ${ctx.status}) has no ID token to forge`);
    }
  }

  // A rewritten lifetime (a token-endpoint fault with `expires_in`).
  const lifetime = ctx.req.authctlExpiresIn;
  if (lifetime !== undefined) {
    const body = ctx.body;
    if (ctx.status === 200 && body && typeof body === 'object' && 'access_token' in body) {
      ctx.body = { ...body, expires_in: lifetime };
      log(`rewrote expires_in to ${lifetime}`);
    }
  }

  if (!ISS_PARAMETER) {
    // RFC 9207 off: not advertised, and not in authorization responses.
    if (ctx.path === DISCOVERY_PATH && ctx.body && typeof ctx.body === 'object') {
      const { authorization_response_iss_parameter_supported: _drop, ...rest } = ctx.body;
      ctx.body = rest;
    }
    const location = ctx.response.get('Location');
    if (location && ctx.status >= 300 && ctx.status < 400) {
      let target;
      try { target = new URL(location, issuer); } catch { target = undefined; }
      if (target && target.origin !== issuer && target.searchParams.has('iss')) {
        target.searchParams.delete('iss');
        ctx.set('Location', target.href);
      }
    }
  }
});

const providerCallback = provider.callback();
const TOKEN_PATH = '/token';
const REVOCATION_PATH = '/token/revocation';
const INTROSPECTION_PATH = '/token/introspection';
const REGISTRATION_PATH = '/reg';

function sendResourceMetadata(res, path) {
  counters.mcp.metadata += 1;
  return sendJson(res, 200, {
    resource: `${issuer}${path}`,
    authorization_servers: [issuer],
    scopes_supported: MCP_SCOPES,
    bearer_methods_supported: ['header'],
    resource_name: `authctl test MCP resource ${path}`,
  });
}

// Checks a bearer token for resource `resource`: {claims} or {error}.
async function checkResourceToken(token, resource) {
  const now = Math.floor(Date.now() / 1000);
  let claims;
  if (token.split('.').length === 3) {
    const v = verifyProviderJwt(token);
    if (v.error) return { error: v.error };
    claims = v.payload;
    if (claims.iss !== issuer) return { error: 'wrong issuer' };
  } else {
    const at = await provider.AccessToken.find(token);
    if (!at) return { error: 'unknown or expired token' };
    claims = {
      sub: at.accountId, client_id: at.clientId, scope: at.scope, exp: at.exp, aud: at.aud,
    };
  }
  if (typeof claims.exp !== 'number' || claims.exp <= now) return { error: 'token expired' };
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!auds.includes(resource)) return { error: `token audience is not ${resource}` };
  return { claims };
}

async function handleMcp(req, res, path, { hint }) {
  const resource = `${issuer}${path}`;
  const challenge = (extra) => {
    const params = [];
    if (hint) {
      params.push(`resource_metadata="${issuer}${PRM_PREFIX}${path}"`, `scope="${MCP_SCOPES[0]}"`);
    }
    if (extra) params.push(extra);
    return params.length ? `Bearer ${params.join(', ')}` : 'Bearer';
  };
  const deny = (error, description) => {
    counters.mcp.unauthorized += 1;
    const extra = error
      ? `error="${error}", error_description="${description.replace(/["\\]/g, '')}"`
      : undefined;
    return sendJson(res, 401, { error: error || 'unauthorized', error_description: description },
      { 'WWW-Authenticate': challenge(extra) });
  };
  if (req.method !== 'GET' && req.method !== 'POST') {
    return sendJson(res, 405, { error: 'method not allowed' }, { Allow: 'GET, POST' });
  }
  await readBody(req, 64 * 1024);
  const m = String(req.headers.authorization || '').match(/^Bearer\s+(\S+)\s*$/i);
  if (!m) return deny(undefined, 'a bearer token is required');
  const checked = await checkResourceToken(m[1], resource);
  if (checked.error) return deny('invalid_token', checked.error);
  counters.mcp.ok += 1;
  const { claims } = checked;
  return sendJson(res, 200, {
    ok: true,
    sub: claims.sub,
    aud: claims.aud,
    scope: claims.scope,
    client_id: claims.client_id,
  });
}

async function handle(req, res) {
  const url = new URL(req.url, issuer);
  const path = url.pathname;

  if (path.startsWith('/__test/')) return handleTestControl(provider, req, res, url);
  if (path === '/interaction' || path.startsWith('/interaction/')) {
    return handleInteraction(provider, req, res, url);
  }

  if (keysRotated && req.method === 'GET' && path === '/jwks') {
    return sendJson(res, 200, rotatedJwks(), { 'Content-Type': 'application/jwk-set+json; charset=utf-8' });
  }

  if (MCP_RESOURCES.has(path)) return handleMcp(req, res, path, MCP_RESOURCES.get(path));
  if (req.method === 'GET' && path.startsWith(`${PRM_PREFIX}/`)
      && MCP_RESOURCES.has(path.slice(PRM_PREFIX.length))) {
    return sendResourceMetadata(res, path.slice(PRM_PREFIX.length));
  }
  if (req.method === 'GET' && path === '/.well-known/oauth-authorization-server') {
    // RFC 8414 clients (MCP) look here first: the provider's discovery document.
    req.url = DISCOVERY_PATH;
  }

  if (req.method === 'POST' && path === REVOCATION_PATH) counters.revocation += 1;
  if (req.method === 'POST' && path === REGISTRATION_PATH) counters.registration += 1;
  if (req.method === 'POST' && path === INTROSPECTION_PATH) counters.introspection += 1;

  if (req.method === 'POST' && path === TOKEN_PATH) {
    // Buffer the body to learn the grant_type; the provider then reads it from req.body.
    const raw = await readBody(req, 64 * 1024);
    req.body = raw;
    let grantType = '';
    if (String(req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) {
      const gt = querystring.parse(raw).grant_type;
      grantType = Array.isArray(gt) ? gt[0] : (gt || '');
    }
    const key = grantType || '(none)';
    counters.token[key] = (counters.token[key] || 0) + 1;

    const head = faults[0];
    if (head && (!head.grant_type || head.grant_type === grantType)) {
      if (!head.repeat) faults.shift();
      log(`fault for ${key}: ${JSON.stringify(head)}`);
      if (await applyFault(head, req, res)) return undefined;
    }
  }
  return providerCallback(req, res);
}

server.on('request', (req, res) => {
  handle(req, res).catch((err) => {
    log('request error:', err);
    if (!res.headersSent) {
      try { sendJson(res, 500, { error: 'server_error', error_description: String(err.message) }); } catch { /* ignore */ }
    } else {
      res.destroy();
    }
  });
});
server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
});

function shutdown(sig) {
  log(`received ${sig}, exiting`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.stdout.on('error', () => {});

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
log(`listening on ${issuer}`);
