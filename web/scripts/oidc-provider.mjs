// A real OpenID provider for the tests: `oidc-provider` (OpenID Certified), on a free loopback
// port, with one confidential client and test users. Prints one JSON line on stdout:
// {"issuer": "http://127.0.0.1:PORT", "client_id", "client_secret"}.
//
//   node scripts/oidc-provider.mjs [--client-id ID] [--client-secret SECRET]
//
// Users: alice (alice@example.com, verified), bob (bob@example.com, NOT verified), carol (no
// e-mail). More, or changed ones: POST /_test/users {"sub", "email", "email_verified", "name"}.
// Sign-in is a plain form at /interaction/UID (field `login`: a user's sub); any known user
// signs in without a password and consents to what the client asked for.
// Any http://127.0.0.1:*/ or http://localhost:*/ redirect URI ending in /callback is accepted
// (the tests' servers take free ports).
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    'client-id': { type: 'string', default: 'confab-test' },
    'client-secret': { type: 'string', default: 'confab-test-secret-0123456789' },
  },
});

const users = new Map([
  ['alice', { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' }],
  ['bob', { sub: 'bob', email: 'bob@example.com', email_verified: false, name: 'Bob Example' }],
  ['carol', { sub: 'carol', name: 'Carol' }],
]);

const loopbackCallback = (u) => {
  try {
    const url = new URL(u);
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname) && url.pathname.endsWith('/callback');
  } catch { return false; }
};

let provider;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) { body += chunk; if (body.length > 65536) throw new Error('too large'); }
  return req.headers['content-type']?.includes('json') ? JSON.parse(body) : Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) { res.writeHead(400); res.end('wrong interaction'); return; }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1><form method="post" action="/interaction/${esc(uid)}">
<label>User <input name="login" autofocus></label> <button type="submit">Sign in</button></form></body></html>`);
    return;
  }
  const form = await readForm(req);
  const user = users.get(form.login);
  if (!user) { res.writeHead(400, { 'content-type': 'text/plain' }); res.end('no such user'); return; }
  const grant = new provider.Grant({ accountId: user.sub, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: user.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x');
    const m = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (m) return await interaction(req, res, m[1]);
    if (url.pathname === '/_test/users' && req.method === 'POST') {
      const u = await readForm(req);
      users.set(u.sub, u);
      res.writeHead(204); res.end();
      return;
    }
    return provider.callback()(req, res);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.stack || e));
  }
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: [{
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    cookies: { keys: ['confab-test-cookie-key'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      const user = users.get(id);
      if (!user) return undefined;
      return { accountId: id, async claims() { return { ...user, preferred_username: user.sub }; } };
    },
  });
  provider.proxy = false;
  // Loopback callbacks on any port (see above).
  const allowed = provider.Client.prototype.redirectUriAllowed;
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(u) {
    return loopbackCallback(u) || allowed.call(this, u);
  };
  process.stdout.write(JSON.stringify({ issuer, client_id: args['client-id'], client_secret: args['client-secret'] }) + '\n');
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
