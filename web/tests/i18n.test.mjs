// Languages: the message catalogs are complete (no browser needed for that one), the server
// serves them, and the widget and the dashboard speak the page's language: German from
// <html lang>, Japanese from data-lang, Arabic right to left (light and dark, laptop and phone),
// the dashboard in French; dates and numbers through Intl; English when a catalog is missing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { english, catalog, languages, problems, SURFACES } from '../scripts/i18n.mjs';
import { embedBundle, sizes, BUDGET } from '../scripts/size.mjs';
import { WEB, startServer, createModerator, api, startHost, launch, newPage, shot, widgetReady } from './helpers.mjs';

const SHIPPED = ['ar', 'de', 'es', 'fr', 'ja', 'pt', 'zh'];

describe('catalogs', () => {
  it('every catalog has exactly the English keys, the plural forms of its language and the same placeholders', () => {
    const found = [];
    for (const surface of Object.keys(SURFACES)) {
      assert.deepEqual(languages(surface), SHIPPED, `web/src/i18n/${surface}/ holds one catalog per shipped language`);
      const en = english(surface);
      for (const lang of languages(surface)) {
        for (const p of problems(en, catalog(surface, lang), lang)) found.push(`web/src/i18n/${surface}/${lang}.json: ${p}`);
      }
    }
    assert.deepEqual(found, [], 'incomplete catalogs (run `node web/scripts/i18n.mjs missing LANG` for the English to translate):\n' + found.join('\n'));
  });

  it('the check catches a missing key, an extra key, a lost placeholder and a missing plural form', () => {
    const en = english('embed');
    const de = structuredClone(catalog('embed', 'de'));
    delete de.retry;
    de.retyr = 'Erneut versuchen';
    de.signed_in_as = 'Angemeldet';
    delete de.count.one;
    de.err.network = 'Netz {host}';
    const ar = structuredClone(catalog('embed', 'ar'));
    delete ar.new_replies.two;
    const ja = structuredClone(catalog('embed', 'ja'));
    ja.new_replies.one = '{n} 件';
    const all = [...problems(en, de, 'de'), ...problems(en, ar, 'ar'), ...problems(en, ja, 'ja')].join('\n');
    for (const want of ['retry: missing', 'retyr: not in English', 'signed_in_as: placeholders', 'count.one: missing plural form',
      'err.network: placeholders', 'new_replies.two: missing plural form', 'new_replies.one: ja has no such plural form']) {
      assert.ok(all.includes(want), `expected "${want}" in:\n${all}`);
    }
  });

  it('the page, the scripts and the server agree on the languages and the dashboard keys', () => {
    const html = readFileSync(join(WEB, 'src', 'admin.html'), 'utf8');
    const en = english('admin');
    const keys = Array.from(html.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g), (m) => m[1]);
    assert.ok(keys.length > 100);
    assert.deepEqual(keys.filter((k) => !(k in en)), [], 'admin.html keys missing from STRINGS in admin.js');
    const listed = (file) => {
      const m = /const LANGS = \[([^\]]*)\]/.exec(readFileSync(join(WEB, 'src', file), 'utf8'));
      return m[1].split(',').map((s) => s.trim().replace(/'/g, '')).sort();
    };
    assert.deepEqual(listed('embed.js'), SHIPPED);
    assert.deepEqual(listed('admin.js'), SHIPPED);
    const rs = readFileSync(join(WEB, '..', 'crates', 'confab-server', 'src', 'http', 'web.rs'), 'utf8');
    const served = /catalogs!\(([^)]*)\)/.exec(rs)[1].split(',').map((s) => s.trim().replace(/"/g, '')).filter(Boolean).sort();
    assert.deepEqual(served, SHIPPED);
  });

  it('the English table stays inline and the embed within its budget', () => {
    const { gz } = sizes(embedBundle());
    assert.ok(gz <= BUDGET, `embed is ${gz} bytes gzipped`);
    assert.ok(!embedBundle().includes('Kommentare'), 'no catalog is bundled into the embed');
  });
});

let server, host, browser;
const T = '#confab-thread';
const IDENT = 'i18n-thread';
const page = (lang, { attrs = '', dir = '' } = {}) => `<!doctype html><html lang="${lang}"${dir ? ` dir="${dir}"` : ''}><head><meta charset="utf-8">
<title>Page</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: Georgia, serif; max-width: 760px; margin: 20px auto; padding: 0 16px;">
<h1>${lang}</h1><div id="confab-thread"></div>
<script src="${server.url}/embed.js" data-forum="demo" data-ident="${IDENT}" ${attrs} async></script></body></html>`;

/** What the widget should say for n in lang, from the shipped catalog (English's zero first). */
function plural(lang, key, n) {
  const forms = catalog('embed', lang)[key];
  const form = n === 0 && forms.zero ? 'zero' : new Intl.PluralRules(lang).select(n);
  return (forms[form] || forms.other).replace('{n}', new Intl.NumberFormat(lang).format(n));
}

// A server, a site on another origin and a browser: for everything below.
describe('in a browser', () => {
  before(async () => {
    server = await startServer();
    createModerator(server);
    const a = await api(server, 'POST', '/comments', { forum: 'demo', ident: IDENT, body: 'First, with a reply', author_name: 'Amal' });
    await api(server, 'POST', '/comments', { forum: 'demo', ident: IDENT, body: 'A reply to Amal', author_name: 'Badr', parent_id: a.id });
    await api(server, 'POST', '/comments', { forum: 'demo', ident: IDENT, body: 'Second top-level comment', author_name: 'Chen' });
    host = await startHost({
      '/de': () => page('de-DE'),
      '/ja': () => page('en', { attrs: 'data-lang="ja"' }),
      '/ar': () => page('ar', { dir: 'rtl' }),
      '/pt': () => page('pt-BR'),
      '/browser': () => page('').replace('<html lang="">', '<html>'),
    });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await host?.close();
    await server?.stop();
  });

  const open = async (path, opts = {}) => {
    const p = await newPage(browser, { allowed: [host.url, server.url], ...opts });
    p.catalogs = [];
    p.on('request', (r) => { if (r.url().includes('/i18n/')) p.catalogs.push(r.url()); });
    await p.goto(host.url + path);
    await widgetReady(p);
    return p;
  };
  const text = (p, sel) => p.locator(`${T} ${sel}`).first().textContent();

  describe('served catalogs', () => {
    it('serves each catalog as JSON to any origin, with an ETag and a long cache under its version', async () => {
      const embed = await (await fetch(server.url + '/embed.js')).text();
      const v = /const I18N_V = '([0-9a-f]+)'/.exec(embed)?.[1];
      assert.ok(v, 'the served embed carries the catalogs\' version');
      for (const surface of Object.keys(SURFACES)) {
        const res = await fetch(`${server.url}/i18n/${surface}/fr.json?v=${v}`, { headers: { origin: 'https://blog.example' } });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^application\/json/);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.match(res.headers.get('cache-control'), /immutable/);
        assert.deepEqual(await res.json(), catalog(surface, 'fr'));
        const again = await fetch(`${server.url}/i18n/${surface}/fr.json?v=${v}`, { headers: { 'if-none-match': res.headers.get('etag') } });
        assert.equal(again.status, 304);
      }
      const old = await fetch(`${server.url}/i18n/embed/fr.json?v=0000`);
      assert.doesNotMatch(old.headers.get('cache-control'), /immutable/, 'another version is not cached for good');
      for (const bad of ['/i18n/embed/en.json', '/i18n/embed/xx.json', '/i18n/other/de.json', '/i18n/embed/de', '/i18n/embed/..%2Fadmin.json']) {
        const res = await fetch(server.url + bad);
        assert.equal(res.status, 404, bad);
        assert.equal((await res.json()).error.code, 'not_found', bad);
      }
    });
  });

  describe('the widget in other languages', () => {
    it('speaks German on a page with <html lang="de-DE">, with German dates and plurals', async () => {
      const p = await open('/de');
      assert.equal(await text(p, '.c-count'), plural('de', 'count', 3));
      assert.equal(await text(p, '.c-count'), '3 Kommentare');
      assert.equal(await text(p, '.c-sort-btn[data-sort="best"]'), 'Beste');
      assert.equal(await text(p, '.c-reply'), 'Antworten');
      assert.equal(await p.locator(`${T} .confab`).getAttribute('lang'), 'de-DE');
      assert.equal(await p.locator(`${T} .confab`).getAttribute('dir'), 'ltr');
      assert.equal(await p.locator(`${T} textarea`).first().getAttribute('placeholder'), 'Mitdiskutieren …');
      // Dates: "gerade eben" for a comment just posted, the full date in German on hover.
      assert.equal(await text(p, '.c-time'), 'gerade eben');
      const title = await p.locator(`${T} .c-time`).first().getAttribute('title');
      const weekday = new Intl.DateTimeFormat('de', { weekday: 'long', timeZone: 'UTC' }).format(new Date());
      assert.ok(title.includes(weekday), `"${title}" names the day in German (${weekday})`);
      assert.equal(p.catalogs.length, 1);
      assert.match(p.catalogs[0], /\/i18n\/embed\/de\.json\?v=[0-9a-f]+$/);
      assert.deepEqual(p.consoleErrors, []);
      await shot(p, 'i18n-de');
      await p.context().close();
    });

    it('speaks Japanese by data-lang="ja" over <html lang="en">', async () => {
      const p = await open('/ja');
      assert.equal(await text(p, '.c-count'), 'コメント 3 件');
      assert.equal(await text(p, '.c-sort-btn[data-sort="newest"]'), '新しい順');
      assert.equal(await text(p, '.c-time'), 'たった今');
      assert.equal(await p.locator(`${T} .confab`).getAttribute('lang'), 'ja');
      await shot(p, 'i18n-ja');
      await p.context().close();
    });

    it('matches by primary subtag (pt-BR is pt) and follows the browser when the page says nothing', async () => {
      const pt = await open('/pt');
      assert.equal(await text(pt, '.c-count'), '3 comentários');
      assert.equal(await pt.locator(`${T} .confab`).getAttribute('lang'), 'pt-BR');
      await pt.context().close();
      const zh = await open('/browser', { locale: 'zh-CN' });
      assert.equal(await text(zh, '.c-count'), '3 条评论');
      await shot(zh, 'i18n-zh');
      await zh.context().close();
      const en = await open('/browser', { locale: 'it-IT' });
      assert.equal(await text(en, '.c-count'), '3 comments', 'a language without a catalog gets English');
      assert.deepEqual(en.catalogs, [], 'and no catalog request');
      await en.context().close();
    });

    it('falls back to English when the catalog cannot be had, and per key when it lacks one', async () => {
      const p = await newPage(browser, { allowed: [host.url, server.url] });
      await p.route('**/i18n/**', (r) => r.abort());
      await p.goto(host.url + '/de');
      await widgetReady(p);
      assert.equal(await text(p, '.c-count'), '3 comments');
      await p.context().close();
      const q = await newPage(browser, { allowed: [host.url, server.url] });
      await q.route('**/i18n/**', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ sort_best: 'Beste' }) }));
      await q.goto(host.url + '/de');
      await widgetReady(q);
      assert.equal(await text(q, '.c-sort-btn[data-sort="best"]'), 'Beste');
      assert.equal(await text(q, '.c-sort-btn[data-sort="newest"]'), 'Newest');
      assert.equal(await text(q, '.c-count'), '3 comments');
      await q.context().close();
    });

    for (const [w, h] of [[1280, 900], [390, 844]]) {
      for (const scheme of ['light', 'dark']) {
        it(`lays Arabic out right to left at ${w}x${h}, ${scheme}`, async () => {
          const p = await open('/ar', { viewport: { width: w, height: h }, colorScheme: scheme });
          const root = p.locator(`${T} .confab`);
          assert.equal(await root.getAttribute('dir'), 'rtl');
          assert.equal(await root.getAttribute('lang'), 'ar');
          assert.equal(await text(p, '.c-count'), plural('ar', 'count', 3));
          assert.equal(await text(p, '.c-count'), '3 تعليقات', 'Arabic "few" for 3');
          assert.equal(await text(p, '.c-sort-btn[data-sort="best"]'), 'الأفضل');
          // The reply hangs from the right: its avatar sits left of its parent's, both at the right.
          const parent = p.locator(`${T} .c-list > .c-item`, { hasText: 'First, with a reply' });
          const pa = await parent.locator(':scope > article .c-avatar').first().boundingBox();
          const ra = await parent.locator('.c-replies .c-avatar').first().boundingBox();
          const rootBox = await root.boundingBox();
          assert.ok(pa.x + pa.width > rootBox.x + rootBox.width * 0.8, `the parent's avatar is at the right (${JSON.stringify(pa)} in ${JSON.stringify(rootBox)})`);
          assert.ok(ra.x + ra.width < pa.x + pa.width - 8, `the reply is indented from the right (${JSON.stringify(ra)} vs ${JSON.stringify(pa)})`);
          const border = await parent.locator('.c-replies').first().evaluate((el) => {
            const cs = getComputedStyle(el);
            return { right: cs.borderRightWidth, left: cs.borderLeftWidth };
          });
          assert.deepEqual(border, { right: '2px', left: '0px' }, 'the thread line is on the right');
          // Text starts at the right: the comment body's text ends near the right edge of its box.
          const body = await parent.locator(':scope > article .c-body').first().evaluate((el) => {
            const text = document.createTreeWalker(el, NodeFilter.SHOW_TEXT).nextNode();
            const r = document.createRange(); r.selectNodeContents(text);
            const t = r.getBoundingClientRect(), b = el.getBoundingClientRect();
            return { gapRight: b.right - t.right, gapLeft: t.left - b.left };
          });
          assert.ok(body.gapRight < body.gapLeft, `body text is right-aligned (${JSON.stringify(body)})`);
          assert.deepEqual(p.consoleErrors, []);
          await shot(p, `i18n-ar-${w}x${h}-${scheme}`);
          await p.context().close();
        });
      }
    }
  });

  describe('the dashboard in other languages', () => {
    it('speaks French to a French browser, dates included', async () => {
      const p = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 900 }, locale: 'fr-FR' });
      await p.goto(server.url + '/admin');
      await p.locator('#login-title', { hasText: 'Modération Confab' }).waitFor();
      assert.equal(await p.locator('html').getAttribute('lang'), 'fr-FR');
      assert.equal(await p.locator('label[for="login-password"]').textContent(), 'Mot de passe');
      assert.equal(await p.locator('#login-name').evaluate((el) => el.labels[0].textContent), 'Nom d’utilisateur ou e-mail');
      assert.match(await p.locator('.login-card .muted').textContent(), /^Connectez-vous avec un compte de modérateur\. Un opérateur en crée un avec confab admin create-account NAME --moderator-of FORUM\.$/);
      await p.fill('#login-name', 'mod1');
      await p.fill('#login-password', 'secret-pass');
      await p.click('#login-form button[type="submit"]');
      await p.locator('#who', { hasText: 'Connecté en tant que mod1' }).waitFor();
      assert.equal(await p.locator('#tab-settings').textContent(), 'Réglages');
      assert.equal(await p.locator('.queue[data-queue="approved"]').textContent(), 'Approuvés');
      assert.equal(await p.locator('#search').getAttribute('placeholder'), 'Rechercher un auteur, un e-mail, une empreinte d’IP ou du texte');
      // The controls inside translated labels stay in place.
      assert.equal(await p.locator('.forum-pick select#forum').count(), 1);
      await p.click('.queue[data-queue="approved"]');
      const item = p.locator('#items > li', { hasText: 'Second top-level comment' });
      await item.waitFor();
      assert.equal(await item.locator('.badge.status').textContent(), 'approuvé');
      assert.equal(await item.locator('[data-action="approve"], [data-action="spam"]').first().textContent(), 'Spam');
      assert.equal(await item.locator('[data-action="delete"]').textContent(), 'Supprimer');
      const shown = await item.locator('time').textContent();
      const month = new Intl.DateTimeFormat('fr', { month: 'short', timeZone: 'UTC' }).format(new Date());
      assert.ok(shown.includes(month), `"${shown}" is a French date (${month})`);
      await p.locator('#stats-total', { hasText: /^3 sur les 30 derniers jours$/ }).waitFor();
      await p.click('#tab-settings');
      assert.equal(await p.locator('label[for="s-window"]').evaluate((el) => el.firstChild.textContent), 'Délai de modification ');
      assert.equal(await p.locator('label[for="s-origins"] code').textContent(), '*');
      assert.deepEqual(p.consoleErrors.filter((e) => !/status of 401/.test(e)), [], 'nothing but the signed-out /me');
      await shot(p, 'i18n-admin-fr');
      await p.context().close();
    });

    it('lays the dashboard out right to left in Arabic (?lang=ar)', async () => {
      const p = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 900 } });
      await p.goto(server.url + '/admin?lang=ar');
      await p.locator('#login-title', { hasText: 'إشراف Confab' }).waitFor();
      assert.equal(await p.locator('html').getAttribute('dir'), 'rtl');
      await p.fill('#login-name', 'mod1');
      await p.fill('#login-password', 'secret-pass');
      await p.click('#login-form button[type="submit"]');
      await p.locator('#who', { hasText: 'تم تسجيل الدخول باسم mod1' }).waitFor();
      const first = await p.locator('#tab-queue').boundingBox();
      const last = await p.locator('#tab-log').boundingBox();
      assert.ok(first.x > last.x, 'the first tab is at the right');
      await shot(p, 'i18n-admin-ar');
      await p.context().close();
    });
  });
});
