// Accounts a reader can recover, in a real browser: the sign-up form states its rules before the
// first try and says what is wrong in words; a reader who forgot their password asks the widget
// for a link, gets the mail (delivered to a real aiosmtpd sink), sets a new password on the
// linked page and signs in with it; a signed-in reader changes the password and logs out
// everywhere from the account panel.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, startHost, hostPage, launch, newPage, shot, widgetReady, sleep, WEB } from './helpers.mjs';

const PYTHON = process.env.CONFAB_TEST_PYTHON || 'python3';
const SINK = join(WEB, '..', 'crates', 'confab', 'tests', 'api', 'support', 'smtp_sink.py');
const T = '#confab-thread';

let sink, server, host, browser;

async function startSink() {
  const dir = mkdtempSync(join(tmpdir(), 'confab-smtp-'));
  const proc = spawn(PYTHON, [SINK, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (b) => { out += b; const m = /^(\d+)\s/.exec(out); if (m) resolve(Number(m[1])); });
    proc.on('exit', (c) => reject(new Error(`SMTP sink exited (${c}); is aiosmtpd installed for ${PYTHON}?`)));
  });
  return {
    port,
    messages() {
      return readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    },
    stop() { proc.stdin.end(); proc.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** The first mail to `to` that has a link containing `path`, and that link. */
async function mailTo(to, path) {
  for (let i = 0; i < 200; i++) {
    for (const m of sink.messages()) {
      const link = new RegExp(`(http://[^\\s"<>]+${path.replace(/[?]/g, '\\?')}[^\\s"<>]+)`).exec(m.text || '');
      if (m.to.includes(to) && link) return { mail: m, link: link[1] };
    }
    await sleep(50);
  }
  throw new Error(`no mail to ${to} with ${path}: ${JSON.stringify(sink.messages().map((m) => m.to))}`);
}

before(async () => {
  sink = await startSink();
  server = await startServer({
    env: {
      CONFAB_MAIL__SMTP_HOST: '127.0.0.1',
      CONFAB_MAIL__SMTP_PORT: String(sink.port),
      CONFAB_MAIL__TLS: 'none',
      CONFAB_MAIL__FROM: 'Confab <confab@test.example>',
      CONFAB_TASKS__POLL_MS: '50',
    },
  });
  host = await startHost({ '*': (req) => hostPage(server, { ident: new URL(req.url, 'http://x').pathname, title: 'Article' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
  sink?.stop();
});

const open = async (path) => {
  const page = await newPage(browser, { allowed: [host.url, server.url] });
  await page.goto(host.url + path);
  await widgetReady(page);
  return page;
};

/** Console errors but the browser's note of each refused request (the tests make some). */
const scriptErrors = (page) => page.consoleErrors.filter((e) => !e.startsWith('Failed to load resource'));

async function signIn(page, login, password) {
  await page.locator(`${T} .c-user .c-sign-in`).click();
  const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
  await auth.locator('input[name="login"]').fill(login);
  await auth.locator('input[name="password"]').fill(password);
  await auth.locator('button[type="submit"]').click();
  return auth;
}

/** An account whose address is confirmed the way a reader confirms it: by the mailed link. */
async function accountWithAddress(username, email, password) {
  await api(server, 'POST', '/accounts', { username, email, password });
  const { link } = await mailTo(email, '/mail/account-email?t=');
  const res = await fetch(link, { method: 'POST' });
  assert.equal(res.status, 200, await res.text());
  const me = await api(server, 'POST', '/sessions', { login: email, password });
  assert.equal(me.account.email, email);
}

describe('accounts', () => {
  it('states the sign-up rules before the first try, and says what is wrong in words', async () => {
    const page = await open('/rules');
    await page.locator(`${T} .c-user .c-sign-up`).click();
    const form = page.locator(`${T} .c-auth[data-mode="up"]`);
    const username = form.locator('input[name="username"]');
    const password = form.locator('input[name="password"]');
    // The rules are there, tied to their fields, before anything is typed.
    const rule = async (input) => form.locator('#' + await input.getAttribute('aria-describedby')).textContent();
    assert.match(await rule(username), /3 to 32 characters: letters \(a-z\), digits, _ \. or -/);
    assert.match(await rule(password), /At least 8 characters/);
    await shot(page, 'accounts-sign-up-rules', { fullPage: false });

    await username.fill('al');
    await password.fill('long enough pw');
    await form.locator('button[type="submit"]').click();
    await form.locator('.c-error', { hasText: 'The username must be at least 3 characters.' }).waitFor();
    await username.fill('al ice');
    await form.locator('button[type="submit"]').click();
    await form.locator('.c-error', { hasText: 'The username cannot contain a space' }).waitFor();
    await username.fill('alice');
    await password.fill('short');
    await form.locator('button[type="submit"]').click();
    await form.locator('.c-error', { hasText: 'The password must be at least 8 characters.' }).waitFor();
    await api(server, 'POST', '/accounts', { username: 'taken', password: 'long enough pw' });
    await username.fill('Taken');
    await password.fill('long enough pw');
    await form.locator('button[type="submit"]').click();
    await form.locator('.c-error', { hasText: 'That username is taken' }).waitFor();
    await shot(page, 'accounts-sign-up-taken', { fullPage: false });
    assert.deepEqual(scriptErrors(page), []);
    await page.context().close();
  });

  it('a reader who forgot their password gets a link by mail and signs in with the new one', async () => {
    await accountWithAddress('rosa', 'rosa@example.com', 'the old password');
    const page = await open('/forgot');
    const auth = await signIn(page, 'rosa', 'not the password');
    await auth.locator('.c-error', { hasText: 'wrong login or password' }).waitFor();
    await auth.locator('button', { hasText: 'Forgot password?' }).click();
    const forgot = page.locator(`${T} .c-auth[data-mode="forgot"]`);
    await forgot.locator('input[name="login"]').fill('rosa@example.com');
    await shot(page, 'accounts-forgot', { fullPage: false });
    await forgot.locator('button[type="submit"]').click();
    await forgot.locator('[role="status"]', { hasText: 'If that account has an e-mail address, we sent a link' }).waitFor();
    await shot(page, 'accounts-forgot-sent', { fullPage: false });

    const { mail, link } = await mailTo('rosa@example.com', '/mail/password-reset?t=');
    assert.match(mail.headers.find(([k]) => k.toLowerCase() === 'subject')[1], /new password/);
    const reset = await newPage(browser, { allowed: [server.url] });
    await reset.goto(link);
    await shot(reset, 'accounts-reset-page');
    // The page states the rule, and the browser holds it too (the server refuses what slips by).
    assert.match(await reset.textContent('body'), /At least 8 characters/);
    assert.equal(await reset.getByLabel('New password').getAttribute('minlength'), '8');
    await reset.getByLabel('New password').fill('a brand new password');
    await reset.getByRole('button', { name: 'Set the new password' }).click();
    await reset.locator('h1', { hasText: 'Password changed' }).waitFor();
    await shot(reset, 'accounts-reset-done');
    // The link works once.
    await reset.goto(link);
    assert.match(await reset.textContent('body'), /already used/);
    assert.deepEqual(reset.foreign, []);
    await reset.context().close();

    // Back on the article: the old password fails, the new one signs in.
    await page.locator(`${T} .c-auth button`, { hasText: 'Close' }).click();
    const again = await signIn(page, 'rosa', 'the old password');
    await again.locator('.c-error', { hasText: 'wrong login or password' }).waitFor();
    await again.locator('input[name="password"]').fill('a brand new password');
    await again.locator('button[type="submit"]').click();
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as rosa' }).waitFor();
    await shot(page, 'accounts-signed-in-after-reset', { fullPage: false });
    assert.deepEqual(scriptErrors(page), []);
    await page.context().close();
  });

  it('the account panel changes the password and logs out everywhere', async () => {
    await api(server, 'POST', '/accounts', { username: 'milo', password: 'milo first pw' });
    const phone = await open('/panel');
    await signIn(phone, 'milo', 'milo first pw');
    await phone.locator(`${T} .c-user-name`, { hasText: 'Signed in as milo' }).waitFor();
    const laptop = await open('/panel');
    await signIn(laptop, 'milo', 'milo first pw');
    await laptop.locator(`${T} .c-user-name`, { hasText: 'Signed in as milo' }).waitFor();

    const account = laptop.locator(`${T} .c-user .c-account`);
    await account.click();
    assert.equal(await account.getAttribute('aria-expanded'), 'true');
    const panel = laptop.locator(`${T} .c-auth[data-mode="account"]`);
    await shot(laptop, 'accounts-panel', { fullPage: false });
    await panel.locator('button', { hasText: 'Change password' }).click();
    const change = laptop.locator(`${T} .c-auth[data-mode="password"]`);
    await change.locator('input[name="current"]').fill('not it');
    await change.locator('input[name="new"]').fill('milo second pw');
    await change.locator('button[type="submit"]').click();
    await change.locator('.c-error', { hasText: 'The current password is not right.' }).waitFor();
    await change.locator('input[name="current"]').fill('milo first pw');
    await change.locator('button[type="submit"]').click();
    await change.locator('[role="status"]', { hasText: 'Other devices were signed out' }).waitFor();
    await shot(laptop, 'accounts-password-changed', { fullPage: false });
    // This browser stays signed in; the phone's session has ended.
    await laptop.reload();
    await widgetReady(laptop);
    await laptop.locator(`${T} .c-user-name`, { hasText: 'Signed in as milo' }).waitFor();
    await phone.reload();
    await widgetReady(phone);
    await phone.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();

    // A new address: mailed a link; the account keeps the old one until it is followed.
    await laptop.locator(`${T} .c-user .c-account`).click();
    await laptop.locator(`${T} .c-auth[data-mode="account"] button`, { hasText: 'Change e-mail' }).click();
    const email = laptop.locator(`${T} .c-auth[data-mode="email"]`);
    await email.locator('input[name="email"]').fill('milo@example.com');
    await email.locator('input[name="password"]').fill('milo second pw');
    await email.locator('button[type="submit"]').click();
    await email.locator('[role="status"]', { hasText: 'We sent a link to milo@example.com' }).waitFor();
    const { link } = await mailTo('milo@example.com', '/mail/account-email?t=');
    assert.equal((await api(server, 'POST', '/sessions', { login: 'milo', password: 'milo second pw' })).account.email, null);
    assert.equal((await fetch(link, { method: 'POST' })).status, 200);
    assert.equal((await api(server, 'POST', '/sessions', { login: 'milo@example.com', password: 'milo second pw' })).account.email, 'milo@example.com');
    await email.locator('button', { hasText: 'Close' }).click();

    // Log out everywhere: this browser too.
    await signIn(phone, 'milo', 'milo second pw');
    await phone.locator(`${T} .c-user-name`, { hasText: 'Signed in as milo' }).waitFor();
    await laptop.locator(`${T} .c-user .c-account`).click();
    await laptop.locator(`${T} .c-auth[data-mode="account"] button`, { hasText: 'Log out everywhere' }).click();
    await laptop.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();
    await phone.reload();
    await widgetReady(phone);
    await phone.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();
    assert.deepEqual(scriptErrors(laptop), []);
    await phone.context().close();
    await laptop.context().close();
  });
});
