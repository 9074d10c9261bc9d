/*! Confab embed: threaded comments for any page. One script tag, no third-party requests.
 *
 *   <div id="confab-thread"></div>
 *   <script src="https://HOST/embed.js" data-forum="demo" async></script>
 *
 * The thread renders into a shadow root on #confab-thread: the host page's CSS can't reach in
 * and ours can't leak out, while CSS custom properties (--confab-*) still inherit in, so a site
 * can restyle it. Every string a reader sees is in STRINGS below (override per site with
 * confab_config.strings; other languages: web/TRANSLATING.md). Elements with
 * data-confab-count="IDENT" get "N comments", filled by one batched request.
 */
(() => {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Strings: the one table to translate (English; other languages: web/TRANSLATING.md). {name}
  // placeholders are filled at run time; plural entries are {zero?, one, other, ...} chosen
  // with Intl.PluralRules.
  const STRINGS = {
    count: { zero: 'No comments yet', one: '{n} comment', other: '{n} comments' },
    comments_label: 'Comments',
    sort_label: 'Sort comments',
    sort_best: 'Best',
    sort_newest: 'Newest',
    sort_oldest: 'Oldest',
    sort_featured: 'Featured',
    featured_empty: 'No featured comments yet.',
    loading: 'Loading comments…',
    load_failed: 'Comments could not be loaded.',
    // A page whose origin the forum does not list: readers see `unavailable`; the site's owner
    // (on localhost, or a moderator) sees `origin_owner`, as the console does.
    unavailable: 'Comments are unavailable on this page.',
    origin_owner: 'This page\'s origin ({origin}) is not among the allowed origins of forum "{forum}". Add it with: confab admin forum {forum} --add-origin {origin}',
    retry: 'Try again',
    load_more: 'Load more comments',
    empty: 'Be the first to comment.',
    write: 'Write',
    preview: 'Preview',
    empty_post: 'Write something first.',
    preview_loading: 'Rendering preview…',
    placeholder: 'Join the discussion…',
    reply_placeholder: 'Write a reply…',
    comment_label: 'Your comment',
    help: 'Formatting help',
    help_rows: [
      ['**bold**', 'bold'], ['*italic*', 'italic'], ['~~strike~~', 'strikethrough'],
      ['`code`', 'inline code'], ['[text](https://example.com)', 'link'], ['> quote', 'quote'],
      ['- item', 'bulleted list'], ['1. item', 'numbered list'], ['```\ncode\n```', 'code block'],
    ],
    help_note: 'HTML is shown as text. Images are shown as links. Leave a blank line between paragraphs.',
    name: 'Name',
    name_placeholder: 'Your name (optional)',
    email: 'E-mail',
    email_placeholder: 'E-mail (optional, never shown)',
    website: 'Website',
    website_placeholder: 'Website (optional)',
    notify_replies: 'Notify me of replies by e-mail',
    notify_check_inbox: 'Check your inbox to confirm: we sent you a link. Replies are e-mailed once you follow it.',
    notify_subscribed: 'Replies to your comment will be e-mailed to you.',
    follow: 'Follow',
    following: 'Following',
    follow_hint: 'E-mail me every new comment in this discussion',
    unfollow_hint: 'Stop e-mailing me new comments in this discussion',
    followed: 'You follow this discussion: new comments are e-mailed to you.',
    unfollowed: 'You no longer follow this discussion.',
    post: 'Post comment',
    post_reply: 'Post reply',
    posting: 'Posting…',
    saved: 'Saved',
    checking: 'Checking…',
    save: 'Save',
    saving: 'Saving…',
    cancel: 'Cancel',
    close: 'Close',
    as_guest: 'You are commenting as a guest.',
    signed_in_as: 'Signed in as {name}',
    sign_in: 'Sign in',
    sso_sign_in: 'Sign in with {name}',
    provider_or: 'or with your Confab account:',
    popup_blocked: 'The sign-in window was blocked: allow pop-ups for this page and try again.',
    sign_out: 'Sign out',
    sign_up: 'Create account',
    sign_in_title: 'Sign in to comment',
    sign_up_title: 'Create an account',
    to_sign_up: 'No account yet? Create one',
    to_sign_in: 'Have an account? Sign in',
    login: 'Username or e-mail',
    username: 'Username',
    password: 'Password',
    display_name: 'Display name (optional)',
    username_rule: '3 to 32 characters: letters (a-z), digits, _ . or -',
    password_rule: 'At least 8 characters.',
    email_rule: 'Needed to reset a forgotten password. We mail it a link to confirm it.',
    forgot: 'Forgot password?',
    forgot_title: 'Forgot your password?',
    forgot_note: 'Enter your username or e-mail. We mail the account a link to set a new password.',
    send_link: 'Send link',
    reset_sent: 'If that account has an e-mail address, we sent a link to it. The link works once, within the hour.',
    account: 'Account',
    change_password: 'Change password',
    change_email: 'Change e-mail',
    sign_out_all: 'Log out everywhere',
    current_password: 'Current password',
    new_password: 'New password',
    new_email: 'New e-mail address',
    email_note: 'We mail a link to the new address. It becomes your address when you follow it.',
    password_changed: 'Your password was changed. Other devices were signed out.',
    email_sent: 'We sent a link to {email}. It becomes your address when you follow the link.',
    signed_out_all: 'You were signed out on every device.',
    // A reader's own data (download, delete the account).
    download_data: 'Download my data',
    data_ready: 'Your data was downloaded (confab-data.json).',
    delete_account: 'Delete my account',
    delete_account_note: 'Deleting your account signs you out everywhere and forgets your name and e-mail address. It cannot be undone.',
    delete_comments: 'Your comments',
    delete_keep: 'Keep them, shown as by "deleted user"',
    delete_remove: 'Delete them too (a placeholder stays where others replied)',
    delete_confirm: 'Delete my account for good',
    account_deleted: 'Your account was deleted.',
    account_deleting: 'Your account was deleted; your comments follow in a moment.',
    guest_data: 'My comments',
    guest_data_title: 'Your comments as a guest',
    guest_data_email: 'Your e-mail address',
    guest_data_note: 'Enter the e-mail address you commented with. We mail it a link to download or delete your comments on this site.',
    guest_data_sent: 'If comments on this site were posted with that address, we sent it a link. The link works for an hour.',
    moderate: 'Moderate',
    reply: 'Reply',
    edit: 'Edit',
    delete: 'Delete',
    flag: 'Flag',
    flagged: 'Flagged',
    like: 'Like',
    dislike: 'Dislike',
    likes_label: 'Like ({n})',
    dislikes_label: 'Dislike ({n})',
    confirm_delete: 'Delete this comment? This cannot be undone.',
    flag_reason: 'What is wrong with this comment? (optional)',
    flag_submit: 'Flag for moderators',
    flag_thanks: 'Thanks. A moderator will take a look.',
    collapse: 'Collapse thread by {name}',
    expand: 'Expand thread by {name}',
    collapsed: { one: '{n} reply hidden', other: '{n} replies hidden' },
    more_replies: { one: 'Show {n} more reply', other: 'Show {n} more replies' },
    show_replies: { one: 'Show {n} reply', other: 'Show {n} replies' },
    replies_label: 'Replies to {name}',
    by: 'Comment by {name}',
    edited: 'edited',
    edited_at: 'Edited {time}',
    moderator: 'Moderator',
    pending: 'Awaiting moderation',
    pending_note: 'Only you can see this comment until a moderator approves it.',
    posted: 'Your comment was posted.',
    posted_pending: 'Thanks! Your comment will appear to others once a moderator approves it.',
    deleted: 'This comment was deleted.',
    deleted_done: 'Your comment was deleted.',
    closed: 'This discussion is closed: new comments and replies are not accepted.',
    guests_off: 'This site accepts comments from signed-in readers only.',
    just_now: 'just now',
    anonymous: 'Anonymous',
    // A moderator's menu on each comment.
    mod_menu: 'Moderate',
    pinned: 'Pinned',
    mod_pin: 'Pin to the top',
    mod_unpin: 'Unpin',
    mod_pinned: 'Comment pinned.',
    mod_unpinned: 'Comment unpinned.',
    featured: 'Featured',
    mod_feature: 'Feature',
    mod_unfeature: 'Unfeature',
    mod_featured: 'Comment featured.',
    mod_unfeatured: 'Comment no longer featured.',
    // Emoji reactions, on each comment and on the page itself.
    react: 'Add a reaction',
    page_reactions: 'Reactions to this page',
    reaction_label: '{name}: {n}',
    react_like: 'Like',
    react_love: 'Love',
    react_laugh: 'Funny',
    react_wow: 'Surprising',
    react_sad: 'Sad',
    react_party: 'Celebrate',
    mod_delete: 'Delete',
    mod_spam: 'Mark as spam',
    mod_ban: 'Ban author',
    mod_ban_reason: 'banned from the page',
    mod_deleted: 'Comment deleted.',
    mod_spammed: 'Comment marked as spam.',
    mod_banned: 'Author banned. Lift or change it in the dashboard.',
    powered: 'Comments by Confab',
    // Pictures attached to comments.
    pic_add: 'Add picture',
    pic_alt: 'Picture from {name}',
    pic_open: 'Open the full picture',
    pic_remove: 'Remove picture',
    pic_uploading: 'Uploading picture…',
    pic_too_large: 'This picture is too large.',
    pic_not_picture: 'Only JPEG, PNG, WebP and GIF pictures can be added.',
    pic_limit: { one: 'You can add one picture.', other: 'You can add up to {n} pictures.' },
    // Live updates: new top-level comments wait behind this button; replies appear in place.
    new_comments: { one: '{n} new comment', other: '{n} new comments' },
    new_replies: { one: '{n} new reply', other: '{n} new replies' },
    // Errors by API code; {s} is the wait in seconds where one applies.
    err: {
      rate_limited: { one: 'You are doing that too often. Please wait a second and try again.', other: 'You are doing that too often. Please wait {n} seconds and try again.' },
      banned: 'You cannot comment on this site.',
      blocked_word: 'Your comment contains a word this site does not allow. Please reword it.',
      thread_closed: 'This discussion is closed: new comments are not accepted.',
      guest_posting_disabled: 'This site accepts comments from signed-in readers only. Please sign in.',
      challenge_required: 'Your browser could not complete the anti-spam check. Please try again (this site needs a secure https page).',
      challenge_failed: 'The anti-spam check did not go through. Please try again.',
      edit_window_closed: 'The time to edit or delete this comment has passed.',
      payload_too_large: 'Your comment is too long.',
      unauthorized: 'Please sign in again.',
      forbidden: 'You are not allowed to do that.',
      origin_not_allowed: 'This site is not allowed to use these comments.',
      not_found: 'That comment no longer exists.',
      conflict: 'That username is taken. Please choose another.',
      unavailable: 'The comment server is busy. Please try again in a moment.',
      network: 'Could not reach the comment server. Check your connection and try again.',
      generic: 'Something went wrong. Please try again.',
    },
  };

  const CSS = /*CONFAB_CSS*/'';
  // Languages with a catalog at /i18n/embed/LANG.json (English is STRINGS), and its version.
  const LANGS = ['de', 'fr', 'es', 'pt', 'ja', 'zh', 'ar'];
  const RTL = ['ar'];
  const I18N_V = /*CONFAB_I18N*/'';

  // ---------------------------------------------------------------------------------------
  // Where we came from, and what to show.
  const script = document.currentScript ||
    document.querySelector('script[src*="/embed.js"][data-forum]') || document.querySelector('script[src*="/embed.js"]');
  if (!script || window.Confab) return;
  const BASE = new URL('.', script.src).href; // e.g. https://comments.example.com/
  const API = BASE + 'api/v1';

  const on = (el, ev, fn, opt) => el.addEventListener(ev, fn, opt);
  const isFn = (f) => typeof f === 'function';

  /**
   * A Disqus-style config function: function () { this.page.identifier = ...; this.page.url =
   * ...; this.page.remote_auth_s3 = ...; this.sso = {name, button, url, logout, width, height} }.
   * `this.page.api_key` is Disqus' and is not needed here.
   */
  function fromFunction(f) {
    const o = { page: {} };
    try { f.call(o); } catch (e) { /* a broken config must not break the page */ }
    const p = o.page || {};
    const sso = Object.assign({}, o.sso || {});
    if (p.remote_auth_s3 != null) sso.remote_auth_s3 = p.remote_auth_s3;
    return Object.assign({}, o, { ident: p.identifier, url: p.url, title: p.title, sso });
  }
  function readConfig(extra) {
    const d = script.dataset || {};
    let w = window.confab_config || {};
    if (isFn(w)) w = fromFunction(w);
    // A page made for Disqus keeps its disqus_config; confab_config, when both are there, wins.
    if (isFn(window.disqus_config)) {
      const dq = fromFunction(window.disqus_config);
      const sso = Object.assign({}, dq.sso, w.sso || {});
      w = Object.assign({}, dq, w, { sso });
    }
    w = Object.assign({}, w, extra || {});
    const pick = (k) => (w[k] != null && w[k] !== '' ? w[k] : d[k]);
    const canon = document.querySelector('link[rel="canonical"]');
    const here = /^https?:$/.test(location.protocol) ? location.origin + location.pathname + location.search : '';
    const pageUrl = (canon && /^https?:/.test(canon.href) && canon.href) || here;
    return {
      forum: String(pick('forum') || ''),
      ident: String(pick('ident') || pageUrl || location.pathname),
      url: String(pick('url') || pageUrl || ''),
      title: String(pick('title') || document.title || '').slice(0, 300),
      theme: String(pick('theme') || 'auto'),
      lang: pickLang(pick('lang') || document.documentElement.lang || navigator.languages || navigator.language),
      container: pick('container') || '#confab-thread',
      strings: w.strings || {},
      sso: ssoConfig(w.sso),
    };
  }

  /** The first tag with a catalog (pt-BR is pt), else English; the tag is kept for Intl. */
  function pickLang(tags) {
    for (const tag of [].concat(tags || [])) {
      const p = String(tag).toLowerCase().split(/[-_]/)[0];
      if (p !== 'en' && !LANGS.includes(p)) continue;
      try { return Intl.getCanonicalLocales(String(tag).replace(/_/g, '-'))[0]; } catch (e) { return p; }
    }
    return 'en';
  }
  const primary = (lang) => lang.split('-')[0].toLowerCase();
  const catalogs = {};
  /** The language's catalog, fetched once (null: English, or none to be had). */
  function loadCatalog(lang) {
    const p = primary(lang);
    if (!LANGS.includes(p)) return null;
    return catalogs[p] || (catalogs[p] = fetch(BASE + 'i18n/embed/' + p + '.json?v=' + I18N_V, { credentials: 'omit', mode: 'cors' })
      .then((r) => (r.ok ? r.json() : null)).catch(() => null));
  }
  /** English under the catalog under the site's own wording. */
  function setStrings(cat) {
    const c = cat && typeof cat === 'object' ? cat : {}, own = cfg.strings || {};
    S = Object.assign({}, STRINGS, c, own, { err: Object.assign({}, STRINGS.err, c.err, own.err) });
    rtf = dtf = plurals = nf = null;
  }

  /** The site's SSO: a signed token to sign in with, and its own sign-in and sign-out links. */
  function ssoConfig(s) {
    if (!s || typeof s !== 'object') return {};
    const str = (v, max) => (typeof v === 'string' && v.length <= max ? v : null);
    const link = (v) => (str(v, 2048) && /^https?:\/\//i.test(v) ? v : null);
    const size = (v, dflt) => { const n = parseInt(v, 10); return n >= 100 && n <= 2000 ? n : dflt; };
    return {
      remote_auth_s3: str(s.remote_auth_s3, 8192),
      jwt: str(s.jwt, 8192),
      name: str(s.name, 100),
      button: link(s.button),
      url: link(s.url),
      logout: link(s.logout),
      width: size(s.width, 800),
      height: size(s.height, 600),
    };
  }

  let cfg = readConfig();
  let S = STRINGS;

  // ---------------------------------------------------------------------------------------
  // Small helpers.
  function t(key, vars) {
    let s = key.split('.').reduce((o, k) => (o == null ? o : o[k]), S);
    if (s == null) s = key.split('.').reduce((o, k) => (o == null ? o : o[k]), STRINGS);
    if (s == null) return key;
    return fill(String(s), vars);
  }
  function fill(s, vars) {
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] != null ? vars[k] : m)) : s;
  }
  let plurals, nf;
  function num(n) {
    if (!nf) { try { nf = new Intl.NumberFormat(cfg.lang); } catch (e) { nf = new Intl.NumberFormat('en'); } }
    return nf.format(n);
  }
  function tn(key, n) {
    const pick = (o) => key.split('.').reduce((x, k) => (x == null ? x : x[k]), o);
    const forms = pick(S) || pick(STRINGS);
    // A site's own wording may be one string for every number ({n}; {s} for waits).
    if (typeof forms === 'string') return fill(forms, { n: num(n), s: n });
    if (!plurals) { try { plurals = new Intl.PluralRules(cfg.lang); } catch (e) { plurals = new Intl.PluralRules('en'); } }
    const form = (n === 0 && forms.zero) ? 'zero' : plurals.select(n);
    return fill(forms[form] || forms.other, { n: num(n) });
  }

  /** Builds an element. Text children become text nodes: nothing here parses HTML. */
  function h(tag, attrs, ...kids) {
    const el = tag.includes(':') ? document.createElementNS('http://www.w3.org/2000/svg', tag.split(':')[1]) : document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k.startsWith('on')) on(el, k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid);
    return el;
  }

  let uid = 0;
  const nextId = (p) => 'confab-' + p + '-' + (++uid);

  function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // Storage in the host's localStorage, namespaced by the Confab server (memory if blocked).
  const store = (() => {
    let ls = null;
    try { ls = window.localStorage; ls.setItem('confab:probe', '1'); ls.removeItem('confab:probe'); } catch (e) { ls = null; }
    const mem = {};
    const key = (k) => 'confab:' + BASE + ':' + k;
    return {
      get(k) {
        try { const v = ls ? ls.getItem(key(k)) : mem[k]; return v == null ? null : JSON.parse(v); } catch (e) { return null; }
      },
      set(k, v) {
        const s = JSON.stringify(v);
        try { if (ls) { if (v == null) ls.removeItem(key(k)); else ls.setItem(key(k), s); } else mem[k] = v == null ? null : s; } catch (e) { mem[k] = s; }
      },
    };
  })();

  /** A map kept in storage, trimmed to its newest entries. */
  function storedMap(name, max) {
    return {
      get(id) { const m = store.get(name) || {}; return m[id]; },
      set(id, v) {
        const m = store.get(name) || {};
        if (v == null) delete m[id]; else m[id] = v;
        const keys = Object.keys(m);
        for (const k of keys.slice(0, Math.max(0, keys.length - max))) delete m[k];
        store.set(name, m);
      },
    };
  }
  const editTokens = storedMap('edit', 200);
  const myVotes = storedMap('votes', 2000);
  const myFlags = storedMap('flags', 500);

  class ApiError extends Error {
    constructor(code, message, status, retry) { super(message || code); this.code = code; this.status = status; this.retry = retry; }
  }

  let session = store.get('session'); // {token, account}
  let pin = null; // {token, until}: see apiCall

  /**
   * Calls the API. Live events wait while a request is in flight and are applied once the
   * caller has used its answer: so our own new comment is on screen before its event arrives.
   */
  async function api(method, path, body, headers) {
    hold++;
    try { return await apiCall(method, path, body, headers); } finally { hold--; setTimeout(pump); }
  }
  async function apiCall(method, path, body, headers) {
    const hd = Object.assign({}, headers);
    const raw = typeof Blob !== 'undefined' && body instanceof Blob;
    if (body !== undefined) hd['Content-Type'] = raw ? (/^image\/(jpeg|png|webp|gif)$/.test(body.type) ? body.type : 'application/octet-stream') : 'application/json';
    if (session && session.token) hd.Authorization = 'Bearer ' + session.token;
    const anon = store.get('anon');
    if (anon) hd['X-Confab-Anon'] = anon;
    // Read-your-writes: the server's pin from our last write, sent back until it lapses.
    if (pin && pin.until > Date.now()) hd['X-Confab-Pin'] = pin.token;
    let res;
    try {
      res = await fetch(API + path, {
        method, headers: hd, credentials: 'omit', mode: 'cors',
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError('network', '', 0);
    }
    const pinned = res.headers.get('X-Confab-Pin');
    if (pinned) pin = { token: pinned, until: Date.now() + 14000 };
    let data = null;
    if (res.status !== 204) { try { data = await res.json(); } catch (e) { data = null; } }
    if (!res.ok) {
      const er = (data && data.error) || {};
      if (res.status === 401 && session && !path.startsWith('/sessions')) signedOut();
      throw new ApiError(er.code || 'generic', er.message || '', res.status, res.headers.get('Retry-After'));
    }
    if (data && data.anon_token) store.set('anon', data.anon_token);
    return data;
  }

  /** A message for an API error, from the strings table (the server's text for bad input). */
  function errorText(e) {
    if (e.code === 'invalid_input' || e.code === 'bad_request') return e.message || t('err.generic');
    if (e.code === 'rate_limited') {
      const m = /(\d+)\s*s\b/.exec(e.message || '');
      return tn('err.rate_limited', Number(e.retry || (m && m[1]) || 60));
    }
    if ((e.code === 'unauthorized' || e.code === 'forbidden') && e.message && /login|password/.test(e.message)) return e.message;
    if (e.code === 'unavailable' && /no mail/.test(e.message || '')) return e.message;
    // The server says until when and why ("You can't comment on this site until …: reason"),
    // unless the site has its own wording.
    if (e.code === 'banned' && e.message && !(cfg.strings && cfg.strings.err && cfg.strings.err.banned)) return e.message;
    const s = (S.err && S.err[e.code]) || STRINGS.err[e.code];
    return s || e.message || t('err.generic');
  }

  // ---------------------------------------------------------------------------------------
  // Time.
  let rtf, dtf;
  function relTime(iso) {
    const d = new Date(iso);
    if (!rtf) {
      try { rtf = new Intl.RelativeTimeFormat(cfg.lang, { numeric: 'auto' }); } catch (e) { rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' }); }
    }
    let v = (d.getTime() - Date.now()) / 1000;
    if (Math.abs(v) < 45) return t('just_now');
    const steps = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.345, 'week'], [12, 'month'], [Infinity, 'year']];
    for (const [size, unit] of steps) {
      if (Math.abs(v) < size) return rtf.format(Math.round(v), unit);
      v /= size;
    }
    return '';
  }
  function exactTime(iso) {
    if (!dtf) {
      try { dtf = new Intl.DateTimeFormat(cfg.lang, { dateStyle: 'full', timeStyle: 'long' }); } catch (e) { dtf = new Intl.DateTimeFormat('en', { dateStyle: 'full', timeStyle: 'long' }); }
    }
    return dtf.format(new Date(iso));
  }
  function timeEl(iso, cls) {
    return h('time', { class: cls, datetime: iso, title: exactTime(iso), 'data-rel': '' }, relTime(iso));
  }

  // ---------------------------------------------------------------------------------------
  // Identicons: a mirrored 5x5 grid and a hue, both from the author's avatar hash. Local only.
  const iconCache = new Map();
  function identicon(hash, size) {
    hash = /^[0-9a-f]{8,}$/i.test(hash || '') ? hash.toLowerCase() : '';
    const key = hash + size;
    if (iconCache.has(key)) return iconCache.get(key).cloneNode(true);
    const svg = h('svg:svg', { viewBox: '-0.6 -0.6 6.2 6.2', width: size, height: size, class: 'c-avatar', 'aria-hidden': 'true', focusable: 'false' });
    if (hash) {
      const bits = parseInt(hash.slice(0, 8), 16);
      const hue = parseInt(hash.slice(8, 11), 16) % 360;
      const sat = 45 + (parseInt(hash.slice(11, 12), 16) % 4) * 8;
      svg.append(h('svg:rect', { x: -0.6, y: -0.6, width: 6.2, height: 6.2, class: 'c-avatar-bg' }));
      const fill = 'hsl(' + hue + ' ' + sat + '% 52%)';
      for (let i = 0; i < 15; i++) {
        if (!((bits >>> i) & 1)) continue;
        const x = Math.floor(i / 5), y = i % 5;
        svg.append(h('svg:rect', { x, y, width: 1.02, height: 1.02, fill }));
        if (x < 2) svg.append(h('svg:rect', { x: 4 - x, y, width: 1.02, height: 1.02, fill }));
      }
    } else {
      svg.append(h('svg:rect', { x: -0.6, y: -0.6, width: 6.2, height: 6.2, class: 'c-avatar-none' }));
    }
    iconCache.set(key, svg.cloneNode(true));
    return svg;
  }
  // Gravatar only where the forum turned it on (the API then sends the address's SHA-256);
  // an address with no Gravatar (404), or a page whose CSP refuses it, gets the identicon.
  function avatar(author, deleted, size) {
    const icon = identicon(deleted ? '' : author.avatar, size);
    // The picture an SSO account's site sent (falls back to the identicon if it does not load).
    if (!deleted && /^https?:\/\//i.test(author.avatar_url || '')) {
      const img = h('img', {
        class: 'c-avatar', src: author.avatar_url, width: size, height: size, alt: '', loading: 'lazy',
        referrerpolicy: 'no-referrer', 'aria-hidden': 'true',
      });
      on(img, 'error', () => img.replaceWith(icon));
      return img;
    }
    if (deleted || !/^[0-9a-f]{64}$/.test(author.gravatar || '')) return icon;
    const img = h('img', {
      class: 'c-avatar', src: 'https://gravatar.com/avatar/' + author.gravatar + '?s=' + size * 2 + '&d=404',
      width: size, height: size, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer', 'aria-hidden': 'true',
    });
    on(img, 'error', () => img.replaceWith(icon));
    return img;
  }

  // ---------------------------------------------------------------------------------------
  // Sanitized comment HTML goes in through an inert template. The server sanitized it already;
  // this pass is belt and braces against anything active, and opens links in a new tab.
  const BAD_TAGS = 'script,style,iframe,frame,frameset,object,embed,link,meta,base,form,input,button,textarea,select,svg,math,img,video,audio,template';
  function bodyFragment(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = html || '';
    const frag = tpl.content;
    frag.querySelectorAll(BAD_TAGS).forEach((el) => el.remove());
    frag.querySelectorAll('*').forEach((el) => {
      for (const a of Array.from(el.attributes)) {
        const n = a.name.toLowerCase();
        if (n.startsWith('on') || n === 'style' || n === 'srcdoc' || n === 'formaction' ||
            ((n === 'href' || n === 'src' || n === 'action' || n.endsWith(':href')) && !/^(https?:|mailto:)/i.test(a.value.trim()))) {
          el.removeAttribute(a.name);
        }
      }
      if (el.tagName === 'A') { el.setAttribute('target', '_blank'); el.setAttribute('rel', 'nofollow ugc noopener noreferrer'); }
    });
    return frag;
  }

  // ---------------------------------------------------------------------------------------
  // The thread.
  let root, ui, thread, me, sort, nextCursor, busyLoading = false, count = 0, newest = '';
  const byId = new Map(); // id -> {c, li}

  function isOwn(c) {
    if (c.status === 'deleted') return false;
    if (me && c.author.account_id && c.author.account_id === me.id) return true;
    const tok = editTokens.get(c.id);
    return !!tok && tokenExp(tok) > Date.now();
  }
  function tokenExp(tok) {
    try {
      const p = atob(tok.split('.')[0].replace(/-/g, '+').replace(/_/g, '/'));
      return Number(p.split('|')[1]) || 0;
    } catch (e) { return 0; }
  }

  function announce(msg) {
    ui.live.textContent = '';
    setTimeout(() => { ui.live.textContent = msg; }, 30);
  }

  function setCount(n) {
    count = n;
    if (thread) thread.comment_count = n;
    ui.count.textContent = tn('count', n);
    const mine = normIdent(cfg.ident);
    document.querySelectorAll('[data-confab-count]').forEach((el) => {
      if (normIdent(el.getAttribute('data-confab-count')) === mine) el.textContent = tn('count', n);
    });
  }
  /** Roughly the server's normalization: a URL or path counts by its path and query. */
  function normIdent(s) {
    s = String(s || '').trim();
    if (!/^(https?:)?\/\//i.test(s) && s[0] !== '/') return s;
    try { const u = new URL(s, 'http://x'); return (u.pathname.replace(/\/+$/, '') || '/') + u.search; } catch (e) { return s; }
  }

  function mount(allowHydrate) {
    const host = typeof cfg.container === 'string' ? document.querySelector(cfg.container) : cfg.container;
    if (!host || !cfg.forum) return false;
    const ssr = allowHydrate && host.querySelector('script[type="application/json"][data-confab-page]');
    let hydrate = null;
    if (ssr && (ssr.getAttribute('data-confab-forum') || cfg.forum) === cfg.forum) {
      try { hydrate = { sort: ssr.getAttribute('data-confab-sort') || 'best', page: JSON.parse(ssr.textContent) }; } catch (e) { hydrate = null; }
    }
    root = host.shadowRoot || host.attachShadow({ mode: 'open' });
    root.textContent = '';
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.append(h('style', { text: CSS }));
    }
    buildShell();
    return hydrate || true;
  }

  function buildShell() {
    const sortBtns = ['best', 'newest', 'oldest', 'featured'].map((s) => h('button', {
      type: 'button', class: 'c-sort-btn', 'data-sort': s, 'aria-pressed': String(s === sort),
      onclick: () => changeSort(s),
    }, t('sort_' + s)));
    ui = {};
    ui.count = h('h2', { class: 'c-count', id: 'confab-count' }, t('loading'));
    ui.user = h('div', { class: 'c-user' });
    ui.auth = h('div', { class: 'c-auth-slot' });
    ui.notice = h('div', { class: 'c-notices' });
    ui.pageReacts = h('div', { class: 'c-page-reacts-slot' });
    ui.compose = h('div', { class: 'c-compose-slot' });
    ui.fresh = h('div', { class: 'c-fresh-slot' });
    ui.list = h('ol', { class: 'c-list', 'aria-labelledby': 'confab-count' });
    ui.more = h('div', { class: 'c-more-slot' });
    ui.live = h('div', { class: 'c-sr', role: 'status', 'aria-live': 'polite' });
    ui.root = h('section', { class: 'confab', 'data-theme': cfg.theme, 'aria-label': t('comments_label'), lang: cfg.lang, dir: RTL.includes(primary(cfg.lang)) ? 'rtl' : 'ltr' },
      h('header', { class: 'c-head' },
        ui.count,
        h('div', { class: 'c-sort', role: 'group', 'aria-label': t('sort_label') }, sortBtns),
      ),
      ui.pageReacts,
      h('div', { class: 'c-bar' }, ui.user, ui.follow = h('span', { class: 'c-follow-slot' })),
      ui.auth, ui.notice, ui.compose, ui.fresh,
      ui.list, ui.more, ui.live,
      h('footer', { class: 'c-foot' }, h('a', { href: BASE, target: '_blank', rel: 'noopener' }, t('powered'))),
    );
    ui.sortBtns = sortBtns;
    root.append(ui.root);
    pageSurface();
    renderUser();
  }

  // In dark mode on a dark page, the widget's background is the page's: --confab-bg, else that
  // of the host's nearest (mostly opaque) ancestor with one; embed.css derives the other
  // colours from it, so a warm page gets a warm widget. Light mode is unchanged.
  let pix, darkMq;
  function pageSurface() {
    if (!pix) {
      const cv = document.createElement('canvas');
      cv.width = cv.height = 1;
      pix = cv.getContext('2d', { willReadFrequently: true });
      darkMq = matchMedia('(prefers-color-scheme: dark)');
      on(darkMq, 'change', () => ui && pageSurface());
    }
    const rgba = (color) => { // any CSS colour, through the canvas (an invalid one: transparent)
      pix.clearRect(0, 0, 1, 1); pix.fillStyle = 'transparent'; pix.fillStyle = color; pix.fillRect(0, 0, 1, 1);
      return pix.getImageData(0, 0, 1, 1).data;
    };
    const own = getComputedStyle(root.host).getPropertyValue('--confab-bg').trim();
    let c = own ? rgba(own) : null;
    for (let el = own ? null : root.host; el && !c; el = el.parentElement) {
      const v = rgba(getComputedStyle(el).backgroundColor);
      if (v[3] >= 200) c = v;
    }
    const dark = cfg.theme === 'dark' || (cfg.theme !== 'light' && darkMq.matches);
    if (dark && c && c[3] >= 200 && (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255 < 0.4) {
      ui.root.style.setProperty('--page-bg', 'rgb(' + c[0] + ' ' + c[1] + ' ' + c[2] + ')'); ui.root.dataset.surface = 'page';
    } else delete ui.root.dataset.surface;
  }

  let lastWasSso = false;
  // Accounts that sign in only elsewhere (their site's SSO, or a provider: ext~) have no
  // password here, so no password or address forms.
  const isSsoAccount = (a) => !!(a && /^(sso|ext)~/.test(a.username || ''));
  // A signed-in reader with an address may follow the thread: every new comment is mailed.
  let followed = null;
  async function renderFollow() {
    const tid = me && me.email && thread && thread.id;
    if (!tid) { ui.follow.replaceChildren(); return; }
    if (!followed || followed.thread_id !== tid) {
      try { followed = await api('GET', '/threads/' + tid + '/follow'); } catch (e) { ui.follow.replaceChildren(); return; }
    }
    const on = followed.following;
    const btn = h('button', {
      type: 'button', class: 'c-link c-follow', 'aria-pressed': String(on), title: t(on ? 'unfollow_hint' : 'follow_hint'),
      onclick: async () => {
        btn.disabled = true;
        try {
          followed = await api(on ? 'DELETE' : 'PUT', '/threads/' + tid + '/follow');
          announce(t(followed.following ? 'followed' : 'unfollowed'));
        } catch (e) { announce(errorText(e)); }
        renderFollow();
      },
    }, t(on ? 'following' : 'follow'));
    ui.follow.replaceChildren(btn);
  }

  function renderUser() {
    renderFollow();
    ui.root.classList.toggle('is-signed-in', !!me);
    const bits = [];
    if (me) {
      bits.push(h('span', { class: 'c-user-name' }, t('signed_in_as', { name: me.display_name })));
      if (me.moderates && me.moderates.includes(cfg.forum)) {
        bits.push(h('a', { class: 'c-link', href: BASE + 'admin', target: '_blank', rel: 'noopener' }, t('moderate')));
      }
      if (!isSsoAccount(me)) {
        bits.push(h('button', { type: 'button', class: 'c-link c-account', 'aria-expanded': 'false', onclick: (e) => toggleAuth('account', e.currentTarget) }, t('account')));
      }
      bits.push(h('button', { type: 'button', class: 'c-link c-sign-out', onclick: () => { lastWasSso = isSsoAccount(me); signOut(); } }, t('sign_out')));
    } else {
      bits.push(h('span', { class: 'c-user-name' }, t('as_guest')));
      const s = cfg.sso || {};
      if (s.url && s.name) {
        bits.push(h('button', { type: 'button', class: 'c-link c-sso-sign-in', onclick: ssoLogin },
          s.button ? h('img', { src: s.button, alt: t('sso_sign_in', { name: s.name }), height: 20, referrerpolicy: 'no-referrer' }) : t('sso_sign_in', { name: s.name })));
      }
      bits.push(h('button', { type: 'button', class: 'c-link c-sign-in', 'aria-expanded': 'false', onclick: (e) => toggleAuth('in', e.currentTarget) }, t('sign_in')));
      bits.push(h('button', { type: 'button', class: 'c-link c-sign-up', 'aria-expanded': 'false', onclick: (e) => toggleAuth('up', e.currentTarget) }, t('sign_up')));
      bits.push(h('button', { type: 'button', class: 'c-link c-guest-data', 'aria-expanded': 'false', onclick: (e) => toggleAuth('guestdata', e.currentTarget) }, t('guest_data')));
    }
    ui.user.replaceChildren(...bits);
  }

  // ---------------------------------------------------------------------------------------
  // Accounts.
  // Each mode is a small form in the auth slot: sign in, sign up, a forgotten password, and for
  // a signed-in reader the account panel and its two forms.
  function toggleAuth(mode, opener) {
    if (ui.auth.firstChild && ui.auth.firstChild.dataset.mode === mode) { closeAuth(); return; }
    const err = h('p', { class: 'c-error', role: 'alert' });
    const field = (name, label, type, auto, required, hint) => {
      const id = nextId('f');
      const hintId = hint ? id + '-hint' : null;
      return h('div', { class: 'c-field' }, h('label', { for: id }, label),
        h('input', { id, name, type: type || 'text', autocomplete: auto, required, maxlength: type === 'password' ? 256 : 254, 'aria-describedby': hintId }),
        hint ? h('span', { class: 'c-hint', id: hintId }, hint) : null);
    };
    const title = { in: 'sign_in_title', up: 'sign_up_title', forgot: 'forgot_title', account: 'account', password: 'change_password', email: 'change_email', delete: 'delete_account', guestdata: 'guest_data_title' }[mode];
    const fields = {
      in: () => [providerButtons(err), field('login', t('login'), 'text', 'username', true), field('password', t('password'), 'password', 'current-password', true),
        h('p', { class: 'c-forgot' }, h('button', { type: 'button', class: 'c-link', onclick: () => { closeAuth(); toggleAuth('forgot'); } }, t('forgot')))],
      up: () => [field('username', t('username'), 'text', 'username', true, t('username_rule')),
        field('password', t('password'), 'password', 'new-password', true, t('password_rule')),
        field('display_name', t('display_name'), 'text', 'nickname'), field('email', t('email_placeholder'), 'email', 'email', false, t('email_rule'))],
      forgot: () => [h('p', { class: 'c-note' }, t('forgot_note')), field('login', t('login'), 'text', 'username', true)],
      account: () => [],
      password: () => [h('input', { type: 'text', name: 'username', autocomplete: 'username', value: me.username, hidden: true }),
        field('current', t('current_password'), 'password', 'current-password', true),
        field('new', t('new_password'), 'password', 'new-password', true, t('password_rule'))],
      email: () => [h('p', { class: 'c-note' }, t('email_note')), field('email', t('new_email'), 'email', 'email', true),
        field('password', t('password'), 'password', 'current-password', true)],
      delete: deleteAccountFields,
      guestdata: () => [h('p', { class: 'c-note' }, t('guest_data_note')), field('email', t('guest_data_email'), 'email', 'email', true)],
    }[mode]();
    const submitLabel = { in: 'sign_in', up: 'sign_up', forgot: 'send_link', password: 'change_password', email: 'change_email', delete: 'delete_confirm', guestdata: 'send_link' }[mode];
    const submit = submitLabel && h('button', { type: 'submit', class: mode === 'delete' ? 'c-btn c-danger' : 'c-btn c-primary' }, t(submitLabel));
    const other = mode === 'in' || mode === 'up'
      ? h('button', { type: 'button', class: 'c-link', onclick: () => { closeAuth(); toggleAuth(mode === 'in' ? 'up' : 'in'); } }, mode === 'in' ? t('to_sign_up') : t('to_sign_in'))
      : mode === 'account' ? [
        h('button', { type: 'button', class: 'c-btn', onclick: () => { closeAuth(); toggleAuth('password', ui.authOpener); } }, t('change_password')),
        h('button', { type: 'button', class: 'c-btn', onclick: () => { closeAuth(); toggleAuth('email', ui.authOpener); } }, t('change_email')),
        h('button', { type: 'button', class: 'c-btn', onclick: signOutEverywhere }, t('sign_out_all')),
        h('button', { type: 'button', class: 'c-btn c-download-data', onclick: downloadData }, t('download_data')),
        h('button', { type: 'button', class: 'c-btn c-delete-account', onclick: () => { closeAuth(); toggleAuth('delete', ui.authOpener); } }, t('delete_account'))] : null;
    const form = h('form', { class: 'c-auth', 'data-mode': mode, 'aria-label': t(title) },
      h('h3', {}, t(title)),
      fields, err,
      h('div', { class: 'c-row' }, other, h('span', { class: 'c-grow' }),
        h('button', { type: 'button', class: 'c-btn', onclick: () => closeAuth(true) }, t(submit ? 'cancel' : 'close')),
        submit),
    );
    // A form whose work is done says so in place of its fields.
    const done = (msg) => {
      form.replaceChildren(h('h3', {}, t(title)), h('p', { class: 'c-note', role: 'status' }, msg),
        h('div', { class: 'c-row' }, h('span', { class: 'c-grow' }), h('button', { type: 'button', class: 'c-btn', onclick: () => closeAuth(true) }, t('close'))));
      form.querySelector('button').focus();
    };
    on(form, 'keydown', (e) => { if (e.key === 'Escape') closeAuth(true); });
    on(form, 'submit', async (e) => {
      e.preventDefault();
      const v = Object.fromEntries(new FormData(form));
      submit.disabled = true; err.textContent = '';
      try {
        if (mode === 'forgot') {
          await api('POST', '/password-resets', { login: v.login });
          done(t('reset_sent'));
          return;
        }
        if (mode === 'guestdata') {
          await api('POST', '/data-requests', { forum: cfg.forum, email: v.email });
          done(t('guest_data_sent'));
          return;
        }
        if (mode === 'delete') {
          const r = await api('POST', '/me/delete', { comments: v.comments });
          signedOut();
          done(t(r && r.state === 'running' ? 'account_deleting' : 'account_deleted'));
          loadFirst();
          return;
        }
        if (mode === 'email') {
          await api('POST', '/me/email', { email: v.email, password: v.password });
          done(t('email_sent', { email: v.email.trim() }));
          return;
        }
        const s = mode === 'in'
          ? await api('POST', '/sessions', { login: v.login, password: v.password })
          : mode === 'password'
            ? await api('POST', '/me/password', { current: v.current, new: v.new })
            : await api('POST', '/accounts', { username: v.username, password: v.password, display_name: v.display_name || null, email: v.email || null });
        session = { token: s.token };
        store.set('session', session);
        me = s.account;
        if (mode === 'password') {
          renderUser();
          ui.authOpener = ui.user.querySelector('.c-account');
          ui.authOpener.setAttribute('aria-expanded', 'true');
          done(t('password_changed'));
          return;
        }
        closeAuth();
        renderUser();
        announce(t('signed_in_as', { name: me.display_name }));
        loadFirst(); // the signed-in view may hold the reader's own pending comments
      } catch (ex) {
        err.textContent = errorText(ex);
      } finally { submit.disabled = false; }
    });
    ui.authOpener = opener || ui.user.querySelector({ in: '.c-sign-in', up: '.c-sign-up', guestdata: '.c-guest-data' }[mode] || '.c-account');
    ui.user.querySelectorAll('[aria-expanded]').forEach((b) => b.setAttribute('aria-expanded', String(b === ui.authOpener)));
    ui.auth.replaceChildren(form);
    (form.querySelector('input:not([hidden])') || form.querySelector('.c-row button')).focus();
  }
  // A reader's own data: the export as a file, and the account's deletion (its form is a mode
  // of the auth slot: what happens to the comments is chosen there, "keep" by default).
  function deleteAccountFields() {
    const choice = (value, label, checked) => {
      const id = nextId('f');
      return h('div', { class: 'c-choice' }, h('input', { type: 'radio', id, name: 'comments', value, checked }),
        h('label', { for: id }, label));
    };
    return [h('p', { class: 'c-note' }, t('delete_account_note')),
      h('fieldset', { class: 'c-field' }, h('legend', {}, t('delete_comments')),
        choice('keep', t('delete_keep'), true), choice('remove', t('delete_remove'), false))];
  }
  async function downloadData() {
    try {
      const data = await api('GET', '/me/data');
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
      const a = h('a', { href: url, download: 'confab-data.json', hidden: true });
      ui.root.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      announce(t('data_ready'));
    } catch (ex) {
      announce(errorText(ex));
    }
  }
  // ---------------------------------------------------------------------------------------
  // Sign-in with an OpenID provider or GitHub (the server's [auth] config). The provider's
  // pages open in a popup on the Confab server; its last page posts the session to this page's
  // origin (and no other), checked here to come from the Confab server and that popup.
  let authProviders = []; // [{name, label}] from GET /auth/providers
  let authPopup = null;
  let authErr = null;
  const SERVER_ORIGIN = new URL(BASE).origin;
  async function loadProviders() {
    try { authProviders = ((await api('GET', '/auth/providers')) || {}).providers || []; } catch (e) { authProviders = []; }
  }
  function providerButtons(err) {
    if (!authProviders.length) return null;
    return h('div', { class: 'c-providers' },
      authProviders.map((p) => h('button', { type: 'button', class: 'c-btn c-provider', 'data-provider': p.name, onclick: () => providerLogin(p, err) },
        t('sso_sign_in', { name: p.label }))),
      h('p', { class: 'c-note' }, t('provider_or')));
  }
  function providerLogin(p, err) {
    authErr = err;
    err.textContent = '';
    const url = BASE + 'auth/' + encodeURIComponent(p.name) + '?forum=' + encodeURIComponent(cfg.forum) + '&origin=' + encodeURIComponent(location.origin);
    const w = 500, ht = 650;
    const left = Math.max(0, (screen.width - w) / 2), top = Math.max(0, (screen.height - ht) / 2);
    authPopup = window.open(url, 'confab_auth', `width=${w},height=${ht},left=${left},top=${top}`);
    if (!authPopup) err.textContent = t('popup_blocked');
  }
  on(window, 'message', (e) => {
    if (e.origin !== SERVER_ORIGIN || !authPopup || e.source !== authPopup) return;
    const d = e.data || {};
    if (d.confab === 'session' && d.session && d.session.token) {
      authPopup = null;
      session = { token: d.session.token };
      store.set('session', session);
      me = d.session.account;
      closeAuth();
      renderUser();
      announce(t('signed_in_as', { name: me.display_name }));
      loadFirst();
    } else if (d.confab === 'auth-error' && d.error) {
      if (authErr && authErr.isConnected) authErr.textContent = d.error.message || errorText(d.error);
    }
  });

  async function signOutEverywhere() {
    try { await api('DELETE', '/me/sessions'); } catch (e) { /* the token is dropped either way */ }
    closeAuth();
    signedOut();
    announce(t('signed_out_all'));
    loadFirst();
  }
  function closeAuth(refocus) {
    ui.auth.replaceChildren();
    ui.user.querySelectorAll('[aria-expanded]').forEach((b) => b.setAttribute('aria-expanded', 'false'));
    if (refocus && ui.authOpener && ui.authOpener.isConnected) ui.authOpener.focus();
  }
  // The site's own sign-in (SSO). Who the token names is read (not trusted: the server checks
  // the signature) only to skip asking again for the same reader within SSO_FRESH_MS.
  const SSO_FRESH_MS = 10 * 60 * 1000;
  function ssoSubject(s) {
    try {
      if (s.remote_auth_s3) {
        const m = s.remote_auth_s3.trim().split(' ')[0].replace(/-/g, '+').replace(/_/g, '/');
        const u = JSON.parse(atob(m + '='.repeat((4 - (m.length % 4)) % 4)));
        return u && u.id != null ? String(u.id) : '';
      }
      const p = s.jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const c = JSON.parse(atob(p + '='.repeat((4 - (p.length % 4)) % 4)));
      return c && c.sub != null ? String(c.sub) : null;
    } catch (e) { return null; }
  }
  async function ssoSignIn() {
    const s = cfg.sso || {};
    if (!s.remote_auth_s3 && !s.jwt) return;
    const subject = ssoSubject(s); // '' : the site says nobody is signed in
    const last = store.get('sso');
    const signedIn = session && session.token;
    if (subject === '' && !signedIn) return;
    if (subject && signedIn && last && last.forum === cfg.forum && last.subject === subject &&
        Date.now() - last.at < SSO_FRESH_MS) return;
    try {
      const body = s.remote_auth_s3 ? { forum: cfg.forum, remote_auth_s3: s.remote_auth_s3 } : { forum: cfg.forum, jwt: s.jwt };
      const r = await api('POST', '/sessions/sso', body);
      if (r && r.token) {
        session = { token: r.token };
        store.set('session', session);
        store.set('sso', { forum: cfg.forum, subject: subject || '', at: Date.now() });
        me = r.account;
      } else {
        // 204: the site signed the reader out.
        store.set('sso', null);
        signedOut();
      }
    } catch (e) {
      // A token the server refuses (expired, wrong secret) leaves the reader as they were.
    }
  }
  /** The site's sign-in page, in a window of the size it asked for; the page reloads when it closes. */
  function ssoLogin() {
    const s = cfg.sso;
    const left = Math.max(0, (screen.width - s.width) / 2), top = Math.max(0, (screen.height - s.height) / 2);
    const w = window.open(s.url, 'confab_sso', `width=${s.width},height=${s.height},left=${left},top=${top}`);
    if (!w) { location.href = s.url; return; }
    const timer = setInterval(() => { if (w.closed) { clearInterval(timer); location.reload(); } }, 500);
  }

  function signedOut() {
    session = null; me = null; store.set('session', null);
    if (ui) renderUser();
  }
  async function signOut() {
    try { await api('DELETE', '/sessions'); } catch (e) { /* the token is dropped either way */ }
    signedOut();
    store.set('sso', null);
    // Signed in through the site: signing out here signs out there too, if the site says how.
    if (lastWasSso && cfg.sso && cfg.sso.logout) { location.href = cfg.sso.logout; return; }
    loadFirst();
  }

  // ---------------------------------------------------------------------------------------
  // Loading pages.
  function pagePath(cursor) {
    const q = new URLSearchParams({ forum: cfg.forum, ident: cfg.ident, sort });
    if (cursor) q.set('cursor', cursor);
    return '/comments?' + q;
  }

  async function loadFirst(hydrate) {
    busyLoading = true;
    let page;
    try {
      page = hydrate || await api('GET', pagePath());
    } catch (e) {
      busyLoading = false;
      ui.root.setAttribute('aria-busy', 'false');
      const refusal = e.code === 'origin_not_allowed' ? e : e.code === 'network' ? await whyRefused() : null;
      if (refusal) { refused(refusal); return; }
      if (e.code === 'network' && window.console) {
        console.warn('Confab: could not load comments from ' + API + '. If the server is up, check that forum "' +
          cfg.forum + '" lists ' + location.origin + ' in its allowed origins.');
      }
      ui.count.textContent = t('load_failed');
      ui.list.replaceChildren(h('li', { class: 'c-error-box', role: 'alert' }, errorText(e), ' ',
        h('button', { type: 'button', class: 'c-btn', onclick: () => loadFirst() }, t('retry'))));
      return;
    }
    busyLoading = false;
    thread = page.thread;
    pictures = !!page.pictures;
    byId.clear();
    ui.root.classList.remove('is-refused');
    // "N new comments" waits where they will go: after the list under "Oldest", else above it.
    if (sort === 'oldest') ui.more.after(ui.fresh); else ui.list.before(ui.fresh);
    fresh = [];
    renderFresh();
    liveSeq = thread ? (thread.seq != null ? thread.seq : null) : 0;
    ui.list.replaceChildren(...page.comments.map(renderComment));
    nextCursor = page.next_cursor;
    renderMore();
    setCount(thread ? thread.comment_count : 0);
    renderNotices();
    renderFollow();
    renderCompose();
    renderPageReacts();
    if (!page.comments.length) ui.list.append(h('li', { class: 'c-empty' }, t(sort === 'featured' ? 'featured_empty' : 'empty')));
    ui.root.setAttribute('aria-busy', 'false');
    if (!window.__confabRendered) {
      window.__confabRendered = true;
      try { performance.mark('confab:rendered'); } catch (e) { /* old browsers */ }
    }
    document.dispatchEvent(new CustomEvent('confab:rendered', { detail: { comments: page.comments.length } }));
    liveOn = true;
    if (!es && !liveTimer) liveStart();
    showTarget();
    syncVotes(page.comments, thread && thread.id);
  }

  /**
   * Why the first read failed as a network error, if it is that this page's origin is not one
   * of the forum's: a page no forum lists has its preflighted requests (a signed-in or
   * returning reader's) refused without a word; a plain GET gets the server's readable refusal.
   */
  async function whyRefused() {
    try {
      const res = await fetch(API + pagePath(), { credentials: 'omit', mode: 'cors' });
      const er = ((await res.json()) || {}).error;
      if (er && er.code === 'origin_not_allowed') return new ApiError(er.code, er.message, res.status);
    } catch (x) { /* unreachable indeed */ }
    return null;
  }
  /**
   * The forum refuses this page's origin: the site's owner reads why and how to fix it in the
   * console, and on screen when testing on localhost or signed in as a moderator; readers see a
   * plain "unavailable", not a false network error.
   */
  function refused(e) {
    const text = t('origin_owner', { origin: location.origin, forum: cfg.forum });
    if (window.console) console.error('Confab: ' + text + (e.message ? ' (server: ' + e.message + ')' : ''));
    const owner = /^(localhost|127\.0\.0\.1|\[::1\])$|\.localhost$/.test(location.hostname) || isModerator();
    ui.root.classList.add('is-refused');
    ui.count.textContent = t('comments_label');
    ui.compose.replaceChildren(); ui.more.replaceChildren();
    ui.list.replaceChildren(h('li', { class: 'c-error-box c-refused', role: 'alert' }, owner ? text : t('unavailable')));
  }

  // The server knows our votes, cast on whichever device: mark them on the comments shown, for
  // whoever we are now (the account when signed in, else the guest's token; myVotes only lets
  // a page render at once). Without either there are no votes to show.
  async function syncVotes(comments, threadId) {
    const ids = threadId ? [threadId] : []; // the page's own reactions come with the comments'
    const walk = (cs) => { for (const c of cs || []) { if (c.status === 'approved') ids.push(c.id); walk(c.replies); } };
    walk(comments);
    const known = (session && session.token) || store.get('anon');
    for (let i = 0; i < ids.length; i += 200) {
      const part = ids.slice(i, i + 200);
      let votes = {}, reacts = {};
      if (known) {
        try {
          const r = await api('GET', '/votes?' + part.map((id) => 'id=' + encodeURIComponent(id)).join('&'));
          votes = r.votes; reacts = r.reactions || {};
        } catch (e) { return; }
      }
      for (const id of part) {
        const v = votes[id] || 0;
        myReacts.set(id, new Set(reacts[id] || []));
        if (id === threadId) { renderPageReacts(); continue; }
        myVotes.set(id, v || null);
        const entry = byId.get(id);
        if (entry) { markVote(entry, v); if (entry.reacts) entry.reacts.draw(); }
      }
    }
  }

  function renderMore() {
    if (!nextCursor) { ui.more.replaceChildren(); return; }
    const btn = h('button', { type: 'button', class: 'c-btn c-load-more', onclick: async () => {
      btn.disabled = true; btn.textContent = t('loading');
      try {
        const page = await api('GET', pagePath(nextCursor));
        const seen = page.comments.filter((c) => !byId.has(c.id));
        const first = seen.length ? renderComment(seen[0]) : null;
        // Comments added at the end under "Oldest" stay after the older ones loaded now.
        const tail = ui.list.querySelector(':scope > .is-tail'), els = first ? [first, ...seen.slice(1).map(renderComment)] : [];
        if (tail) tail.before(...els); else ui.list.append(...els);
        nextCursor = page.next_cursor;
        renderMore();
        if (first) first.querySelector('article').focus();
        syncVotes(seen);
      } catch (e) {
        btn.disabled = false; btn.textContent = t('load_more');
        ui.more.append(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
      }
    } }, t('load_more'));
    ui.more.replaceChildren(btn);
  }

  function changeSort(s) {
    if (s === sort || busyLoading) return;
    sort = s;
    store.set('sort', s);
    ui.sortBtns.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.sort === s)));
    loadFirst();
  }

  function renderNotices() {
    const n = [];
    if (thread && thread.closed) n.push(h('p', { class: 'c-notice c-closed', role: 'note' }, t('closed')));
    ui.notice.replaceChildren(...n);
    ui.root.classList.toggle('is-closed', !!(thread && thread.closed));
  }

  function renderCompose() {
    if (thread && thread.closed) { ui.compose.replaceChildren(); return; }
    if (ui.compose.firstChild) return; // keep what the reader is typing
    ui.compose.replaceChildren(composeForm({ parent: null }));
  }

  // ---------------------------------------------------------------------------------------
  // Proof of work: on a forum that asks guests for it, a challenge is fetched when a compose
  // form is first focused and solved in a Web Worker (made from a Blob URL, so the one script
  // tag is still all a site needs), while the reader types. The submit waits for it if it is
  // not ready yet. Signed-in readers never solve one. One solution per post.
  // Pages served over plain http have no WebCrypto (it is for secure contexts only): there the
  // worker hashes with the small SHA-256 below (FIPS 180-4; its constants computed from the
  // primes as the standard defines them).
  const POW_WORKER = `
    const hex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
    const same = (a, b) => { for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false; return true; };
    const K = new Uint32Array(64), H0 = new Uint32Array(8);
    for (let p = 2, i = 0; i < 64; p++) {
      let prime = true;
      for (let d = 2; d * d <= p; d++) if (p % d === 0) { prime = false; break; }
      if (!prime) continue;
      if (i < 8) H0[i] = (Math.sqrt(p) % 1) * 4294967296;
      K[i++] = (Math.cbrt(p) % 1) * 4294967296;
    }
    const W = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    function sha256(bytes) {
      const l = bytes.length, nb = ((l + 72) >> 6) << 6;
      const m = new Uint8Array(nb);
      m.set(bytes); m[l] = 0x80;
      const dv = new DataView(m.buffer);
      dv.setUint32(nb - 4, l * 8);
      const H = H0.slice();
      for (let o = 0; o < nb; o += 64) {
        for (let i = 0; i < 16; i++) W[i] = dv.getUint32(o + i * 4);
        for (let i = 16; i < 64; i++) {
          const x = W[i - 15], y = W[i - 2];
          W[i] = W[i - 16] + (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + W[i - 7] + (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10));
        }
        let [a, b, c, d, e, f, g, h] = H;
        for (let i = 0; i < 64; i++) {
          const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
          const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
          h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
        }
        H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
      }
      const out = new Uint8Array(32), ov = new DataView(out.buffer);
      for (let i = 0; i < 8; i++) ov.setUint32(i * 4, H[i]);
      return out;
    }
    onmessage = async (e) => {
      const { salt, challenge, max } = e.data;
      const want = hex(challenge), enc = new TextEncoder();
      const subtle = self.crypto && self.crypto.subtle;
      try {
        for (let n = 0; n <= max; n += 64) {
          const batch = [];
          for (let k = n; k < n + 64 && k <= max; k++) {
            batch.push(subtle ? subtle.digest('SHA-256', enc.encode(salt + k)) : sha256(enc.encode(salt + k)));
          }
          const got = await Promise.all(batch);
          for (let i = 0; i < got.length; i++) if (same(new Uint8Array(got[i]), want)) { postMessage({ number: n + i }); return; }
        }
      } catch (err) { /* nothing found: the post says so */ }
      postMessage({ number: null });
    };`;
  let powUrl = null;
  let pow = null; // {promise, forum, done}: the challenge being solved (or solved) for the next post
  let powOff = null; // the forum that said it asks for none (asked again if a post says otherwise)

  /** Solves in a worker; on a page whose policy forbids blob: workers, in this thread. */
  function powSolve(c) {
    return new Promise((resolve) => {
      let w = null;
      try {
        powUrl = powUrl || URL.createObjectURL(new Blob([POW_WORKER], { type: 'text/javascript' }));
        w = new Worker(powUrl);
      } catch (e) { w = null; }
      const msg = { salt: c.salt, challenge: c.challenge, max: c.maxnumber };
      if (w) {
        w.onmessage = (e) => { w.terminate(); resolve(e.data.number); };
        w.onerror = () => { w.terminate(); resolve(powInline(msg)); };
        w.postMessage(msg);
      } else {
        resolve(powInline(msg));
      }
    });
  }
  async function powInline({ salt, challenge, max }) {
    if (!(window.crypto && crypto.subtle)) return null;
    const enc = new TextEncoder();
    for (let n = 0; n <= max; n++) {
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(salt + n)));
      let h = '';
      for (let i = 0; i < d.length; i++) h += d[i].toString(16).padStart(2, '0');
      if (h === challenge) return n;
    }
    return null;
  }

  /** Starts on the next post's challenge, if this reader needs one and none is under way. */
  function powStart() {
    if (me || powOff === cfg.forum || (pow && pow.forum === cfg.forum)) return;
    const forum = cfg.forum;
    const entry = { forum, done: false, promise: null };
    entry.promise = (async () => {
      const c = await apiCall('GET', '/challenge?' + new URLSearchParams({ forum }));
      if (!c || !c.required) { powOff = forum; return null; }
      const number = await powSolve(c);
      if (number == null) return null;
      return { algorithm: c.algorithm, salt: c.salt, challenge: c.challenge, number, signature: c.signature };
    })().catch(() => null).then((sol) => { entry.done = true; return sol; });
    pow = entry;
  }

  /** The solution for the post being sent (null: none needed, or none could be made). */
  async function powTake() {
    powStart();
    const p = pow;
    pow = null;
    return p ? p.promise : null;
  }

  // ---------------------------------------------------------------------------------------
  // Writing: new comments, replies and edits share one form with Write / Preview tabs.
  // ---------------------------------------------------------------------------------------
  // Pictures. On a forum that takes them a compose form has an "Add picture" button; its file
  // picker is made when it is first used. A picture is uploaded as soon as it is picked (the
  // server re-encodes it) and shown as a thumbnail; the post carries the ids. Comments show
  // theirs as lazily loaded thumbnails (sized, so nothing moves) that open the full picture.
  let pictures = false;
  const PIC_MAX = 4;
  function picPicker(err, changed) {
    const picked = [];
    const list = h('div', { class: 'c-pics c-pics-picked' });
    const btn = h('button', { type: 'button', class: 'c-btn c-pic-add' }, t('pic_add'));
    let input = null;
    on(btn, 'click', () => {
      if (!input) {
        input = h('input', { type: 'file', class: 'c-pic-input', accept: 'image/jpeg,image/png,image/webp,image/gif', multiple: true, hidden: true });
        on(input, 'change', () => { const files = [...input.files]; input.value = ''; files.forEach(add); });
        btn.after(input);
      }
      input.click();
    });
    async function add(file) {
      err.textContent = '';
      if (picked.length >= PIC_MAX) { err.textContent = tn('pic_limit', PIC_MAX); return; }
      const url = URL.createObjectURL(file);
      const item = { id: null };
      const rm = h('button', { type: 'button', class: 'c-pic-rm', 'aria-label': t('pic_remove'), title: t('pic_remove') }, '×');
      item.el = h('span', { class: 'c-pic is-uploading' }, h('img', { src: url, alt: '' }), rm);
      on(rm, 'click', () => { const i = picked.indexOf(item); if (i >= 0) picked.splice(i, 1); item.el.remove(); URL.revokeObjectURL(url); changed(); });
      picked.push(item); list.append(item.el); changed();
      announce(t('pic_uploading'));
      try {
        item.id = (await api('POST', '/forums/' + encodeURIComponent(cfg.forum) + '/images', file)).id;
        item.el.classList.remove('is-uploading');
      } catch (e) {
        rm.click();
        err.textContent = e.code === 'payload_too_large' ? t('pic_too_large') : e.code === 'unsupported_media_type' ? t('pic_not_picture') : errorText(e);
      }
    }
    return {
      btn, list,
      ids: () => picked.map((p) => p.id),
      busy: () => picked.some((p) => !p.id),
      clear: () => picked.splice(0).forEach((p) => p.el.remove()),
    };
  }
  function picsOf(c, name) {
    if (!c.images || !c.images.length) return null;
    return h('div', { class: 'c-pics' }, c.images.map((im) => {
      const src = new URL(im.url, BASE).href;
      return h('a', { class: 'c-pic', href: src, target: '_blank', rel: 'noopener', title: t('pic_open') },
        h('img', { src, width: im.width, height: im.height, loading: 'lazy', decoding: 'async', alt: t('pic_alt', { name: name || t('anonymous') }) }));
    }));
  }

  function composeForm(opts) {
    const { parent, comment } = opts;
    const editing = !!comment;
    const taId = nextId('ta');
    const ta = h('textarea', {
      id: taId, name: 'body', rows: parent || editing ? 4 : 5, required: true,
      placeholder: parent ? t('reply_placeholder') : t('placeholder'), 'aria-label': t('comment_label'),
    });
    if (editing) ta.value = comment.body;
    const prevId = nextId('pv');
    const preview = h('div', { class: 'c-preview c-body', id: prevId, role: 'tabpanel', hidden: true, tabindex: '0' });
    const writeTab = h('button', { type: 'button', role: 'tab', class: 'c-tab', 'aria-selected': 'true', 'aria-controls': taId }, t('write'));
    const prevTab = h('button', { type: 'button', role: 'tab', class: 'c-tab', 'aria-selected': 'false', 'aria-controls': prevId, tabindex: '-1' }, t('preview'));
    const showTab = async (which) => {
      const pv = which === 'preview';
      writeTab.setAttribute('aria-selected', String(!pv)); prevTab.setAttribute('aria-selected', String(pv));
      writeTab.tabIndex = pv ? -1 : 0; prevTab.tabIndex = pv ? 0 : -1;
      ta.hidden = pv; preview.hidden = !pv;
      if (!pv) return;
      if (!ta.value.trim()) { preview.replaceChildren(h('p', { class: 'c-muted' }, t('empty_post'))); return; }
      preview.replaceChildren(h('p', { class: 'c-muted' }, t('preview_loading')));
      try {
        const r = await api('POST', '/preview', { body: ta.value });
        preview.replaceChildren(bodyFragment(r.html));
      } catch (e) {
        preview.replaceChildren(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
      }
    };
    on(writeTab, 'click', () => showTab('write'));
    on(prevTab, 'click', () => showTab('preview'));
    const tabs = h('div', { class: 'c-tabs', role: 'tablist', 'aria-label': t('comment_label') }, writeTab, prevTab);
    on(tabs, 'keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = writeTab.getAttribute('aria-selected') === 'true' ? prevTab : writeTab;
      showTab(next === prevTab ? 'preview' : 'write'); next.focus();
    });

    const help = h('details', { class: 'c-help' }, h('summary', {}, t('help')),
      h('table', {}, h('tbody', {}, (S.help_rows || STRINGS.help_rows).map(([src, what]) =>
        h('tr', {}, h('td', {}, h('code', {}, src)), h('td', {}, what))))),
      h('p', { class: 'c-muted' }, t('help_note')));

    const guest = (editing) ? null : (() => {
      const g = store.get('guest') || {};
      const nid = nextId('n'), eid = nextId('e');
      return h('div', { class: 'c-guest' },
        h('div', { class: 'c-field' }, h('label', { for: nid, class: 'c-sr' }, t('name')),
          h('input', { id: nid, name: 'author_name', type: 'text', maxlength: 100, autocomplete: 'name', placeholder: t('name_placeholder'), value: g.name || '' })),
        h('div', { class: 'c-field' }, h('label', { for: eid, class: 'c-sr' }, t('email')),
          h('input', { id: eid, name: 'author_email', type: 'email', maxlength: 254, autocomplete: 'email', placeholder: t('email_placeholder'), value: g.email || '' })),
        h('div', { class: 'c-field' }, h('label', { for: eid + 'w', class: 'c-sr' }, t('website')),
          h('input', { id: eid + 'w', name: 'author_url', type: 'url', maxlength: 500, autocomplete: 'url', placeholder: t('website_placeholder'), value: g.url || '' })));
    })();
    // Reply mail goes to the guest's typed address or the account's: the box shows only when
    // there is one (the server mails a confirmation link first: double opt-in).
    const notifyBox = editing ? null : h('label', { class: 'c-notify', hidden: true },
      h('input', { type: 'checkbox', name: 'notify', value: '1' }), ' ', t('notify_replies'));
    const syncNotify = () => {
      if (!notifyBox) return;
      const em = guest && guest.querySelector('[name=author_email]');
      notifyBox.hidden = !(me ? me.email : em && em.value.trim());
    };
    if (guest) on(guest, 'input', syncNotify);
    syncNotify();
    on(ta, 'focus', syncNotify);

    const err = h('p', { class: 'c-error', role: 'alert' });
    const pics = (!editing && pictures) ? picPicker(err, () => { idem = null; }) : null;
    const label = editing ? t('save') : parent ? t('post_reply') : t('post');
    const submit = h('button', { type: 'submit', class: 'c-btn c-primary' }, label);
    const cancel = (parent || editing) ? h('button', { type: 'button', class: 'c-btn', onclick: () => opts.onCancel() }, t('cancel')) : null;
    const form = h('form', { class: 'c-form' + (parent ? ' is-reply' : '') + (editing ? ' is-edit' : ''), novalidate: true },
      tabs, ta, preview, pics && pics.list, guest, notifyBox, err,
      h('div', { class: 'c-row' }, help, pics && pics.btn, h('span', { class: 'c-grow' }), cancel, submit));
    // The thread's own form is one line ("Join the discussion…") until it is focused, and folds
    // again when focus leaves it empty.
    if (!parent && !editing) {
      form.classList.add('is-folded');
      on(form, 'focusin', () => form.classList.remove('is-folded'));
      on(form, 'focusout', (e) => {
        if (!form.contains(e.relatedTarget) && !ta.value.trim() && !err.textContent) { showTab('write'); form.classList.add('is-folded'); }
      });
    }
    let idem = null;
    on(ta, 'input', () => { idem = null; err.textContent = ''; });
    if (!editing) on(ta, 'focus', powStart);
    on(form, 'keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
      if (e.key === 'Escape' && cancel) { e.preventDefault(); opts.onCancel(); }
    });
    on(form, 'submit', async (e) => {
      e.preventDefault();
      if (!ta.value.trim()) { err.textContent = t('empty_post'); showTab('write'); ta.focus(); return; }
      if (pics && pics.busy()) { err.textContent = t('pic_uploading'); return; }
      err.textContent = '';
      submit.disabled = true; submit.textContent = editing ? t('saving') : t('posting');
      try {
        if (editing) {
          const c = await api('PATCH', '/comments/' + comment.id, { body: ta.value }, editHeader(comment.id));
          opts.onDone(c);
          return;
        }
        const v = Object.fromEntries(new FormData(form));
        if (guest) store.set('guest', { name: v.author_name || '', email: v.author_email || '', url: v.author_url || '' });
        idem = idem || randomKey(); // a retry of the same text can't post twice
        const body = { forum: cfg.forum, ident: cfg.ident, url: cfg.url || null, title: cfg.title || null, parent_id: parent ? parent.id : null, body: ta.value };
        if (!me) { body.author_name = v.author_name || null; body.author_email = v.author_email || null; body.author_url = v.author_url || null; }
        if (notifyBox && !notifyBox.hidden && v.notify) body.notify = true;
        if (pics && pics.ids().length) body.images = pics.ids();
        // A guest's post carries its proof of work: wait quietly if it is still being solved,
        // and once more with a new one if the server did not take it (it expired meanwhile).
        const send = async () => {
          if (!me) {
            if (!pow || !pow.done) submit.textContent = t('checking');
            const sol = await powTake();
            submit.textContent = t('posting');
            if (sol) body.challenge = sol; else delete body.challenge;
          }
          return api('POST', '/comments', body, { 'Idempotency-Key': idem });
        };
        let c;
        try {
          c = await send();
        } catch (ex) {
          if (me || (ex.code !== 'challenge_failed' && ex.code !== 'challenge_required')) throw ex;
          powOff = null; // the forum has just turned it on
          c = await send();
        }
        idem = null;
        if (c.edit_token) editTokens.set(c.id, c.edit_token);
        ta.value = '';
        if (pics) pics.clear();
        showTab('write');
        posted(c, parent);
        if (opts.onDone) opts.onDone(c);
      } catch (ex) {
        err.textContent = errorText(ex);
        if (ex.code === 'guest_posting_disabled' && !me) toggleAuth('in');
        if (ex.code === 'thread_closed' && thread) { thread.closed = true; renderNotices(); }
      } finally {
        submit.disabled = false; submit.textContent = label;
      }
    });
    return form;
  }

  function editHeader(id) {
    const tok = editTokens.get(id);
    return tok ? { 'X-Confab-Edit-Token': tok } : {};
  }

  function posted(c, parent) {
    // Normally our own comment's live event is applied after this (see api()); just in case.
    const known = byId.get(c.id) || fresh.find((x) => x.id === c.id);
    if (known) { if (known.li) known.li.remove(); fresh = fresh.filter((x) => x.id !== c.id); renderFresh(); }
    const li = renderComment(c);
    if (parent) {
      const p = byId.get(c.parent_id) || byId.get(parent.id);
      if (p) {
        p.c.reply_count += 1;
        p.li.querySelector(':scope > article > .c-main > .c-replies').append(li);
      } else ui.list.prepend(li);
    } else {
      const empty = ui.list.querySelector('.c-empty');
      if (empty) empty.remove();
      addTop([li]);
    }
    const pending = c.status !== 'approved';
    if (!pending && !known) setCount(count + 1);
    const art = li.querySelector('article');
    if (pending) {
      const note = h('p', { class: 'c-notice c-posted', role: 'status' }, t('posted_pending'));
      li.querySelector('.c-main').prepend(note);
    }
    let said = pending ? t('posted_pending') : t('posted');
    if (c.notify === 'pending_confirmation' || c.notify === 'subscribed') {
      const n = c.notify === 'subscribed' ? t('notify_subscribed') : t('notify_check_inbox');
      li.querySelector('.c-main').prepend(h('p', { class: 'c-notice c-notify-note', role: 'status' }, n));
      said += ' ' + n;
    }
    announce(said);
    art.focus();
    art.scrollIntoView({ block: 'nearest' });
  }

  // ---------------------------------------------------------------------------------------
  // One comment.
  function renderComment(c) {
    const deleted = c.status === 'deleted';
    const hidden = c.status === 'pending' || c.status === 'spam';
    const name = deleted ? '' : (c.author.name || t('anonymous'));
    const authorId = 'confab-a-' + c.id;
    const li = h('li', { class: 'c-item', 'data-id': c.id, 'data-depth': c.depth });
    const entry = { c, li };
    byId.set(c.id, entry);
    if (c.created_at > newest) newest = c.created_at;

    const meta = h('div', { class: 'c-meta' });
    if (!deleted) {
      const nameEl = c.author.url && /^https?:\/\//i.test(c.author.url)
        ? h('a', { class: 'c-author', id: authorId, href: c.author.url, rel: 'nofollow ugc noopener noreferrer', target: '_blank' }, name)
        : h('span', { class: 'c-author', id: authorId }, name);
      meta.append(nameEl);
      if (c.author.moderator) meta.append(h('span', { class: 'c-badge' }, t('moderator')));
    } else {
      meta.append(h('span', { class: 'c-author c-deleted', id: authorId }, t('deleted')));
    }
    meta.append(h('span', { class: 'c-dot', 'aria-hidden': 'true' }, '·'), timeEl(c.created_at, 'c-time'));
    if (c.edited_at && !deleted) {
      meta.append(h('span', { class: 'c-edited', title: t('edited_at', { time: exactTime(c.edited_at) }) }, '(' + t('edited') + ')'));
    }
    if (hidden) meta.append(h('span', { class: 'c-badge c-badge-pending' }, t('pending')));
    if (thread && thread.pinned_id === c.id && !c.parent_id) meta.append(h('span', { class: 'c-badge c-badge-pinned' }, t('pinned')));
    if (c.featured && !deleted) meta.append(h('span', { class: 'c-badge c-badge-featured' }, t('featured')));

    const repliesId = 'confab-r-' + c.id;
    const toggle = h('button', {
      type: 'button', class: 'c-toggle', 'aria-expanded': 'true', 'aria-controls': repliesId,
      'aria-label': t('collapse', { name: name || t('anonymous') }), title: t('collapse', { name: name || t('anonymous') }),
    }, h('span', { 'aria-hidden': 'true' }, '−'));
    const collapsedNote = h('span', { class: 'c-collapsed-note' });
    on(toggle, 'click', () => {
      const collapsed = li.classList.toggle('is-collapsed');
      toggle.setAttribute('aria-expanded', String(!collapsed));
      const label = t(collapsed ? 'expand' : 'collapse', { name: name || t('anonymous') });
      toggle.setAttribute('aria-label', label); toggle.title = label;
      toggle.firstChild.textContent = collapsed ? '+' : '−';
      collapsedNote.textContent = collapsed ? tn('collapsed', descendants(entry)) : '';
    });

    const body = h('div', { class: 'c-body' });
    if (!deleted) body.append(bodyFragment(c.body_html));
    const pics = deleted ? null : picsOf(c, name);

    const main = h('div', { class: 'c-main' },
      h('div', { class: 'c-head-row' }, meta, collapsedNote, toggle),
      hidden ? h('p', { class: 'c-pending-note' }, t('pending_note')) : null,
      body,
      pics,
      deleted ? null : actions(entry),
      h('div', { class: 'c-slot' }),
      h('ol', { class: 'c-replies', id: repliesId, 'aria-label': t('replies_label', { name: name || t('anonymous') }) },
        (c.replies || []).map(renderComment)),
      h('div', { class: 'c-more-replies' }));
    const art = h('article', {
      class: 'c-comment' + (hidden ? ' is-pending' : '') + (deleted ? ' is-deleted' : ''),
      'aria-labelledby': authorId, tabindex: '-1', id: 'confab-c-' + c.id,
    }, avatar(c.author, deleted, 36), main);
    li.append(art);
    renderMoreReplies(entry);
    return li;
  }

  function descendants(entry) {
    let n = 0;
    entry.li.querySelectorAll(':scope > article > .c-main > .c-replies > li').forEach((li) => {
      const e = byId.get(li.dataset.id);
      n += 1 + (e ? descendants(e) : 0);
    });
    return Math.max(n, entry.c.reply_count || 0);
  }

  function renderMoreReplies(entry) {
    const { c, li } = entry;
    const slot = li.querySelector(':scope > article > .c-main > .c-more-replies');
    slot.replaceChildren();
    if (!c.replies_cursor) return;
    const shown = li.querySelectorAll(':scope > article > .c-main > .c-replies > li').length;
    const remaining = Math.max(1, (c.reply_count || 0) - shown);
    const btn = h('button', { type: 'button', class: 'c-link c-more-btn', onclick: async () => {
      btn.disabled = true;
      try {
        const q = new URLSearchParams({ cursor: c.replies_cursor });
        const r = await api('GET', '/comments/' + c.id + '/replies?' + q);
        const list = li.querySelector(':scope > article > .c-main > .c-replies');
        const added = r.comments.filter((x) => !byId.has(x.id));
        const fresh = added.map(renderComment);
        list.append(...fresh);
        c.replies_cursor = r.next_cursor;
        renderMoreReplies(entry);
        if (fresh[0]) fresh[0].querySelector('article').focus();
        syncVotes(added);
      } catch (e) {
        btn.disabled = false;
        slot.append(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
      }
    } }, shown ? tn('more_replies', remaining) : tn('show_replies', remaining));
    slot.append(btn);
  }

  function actions(entry) {
    const { c } = entry;
    const approved = c.status === 'approved';
    const bar = h('div', { class: 'c-actions' });
    if (approved) {
      const mine = myVotes.get(c.id) || 0;
      const like = h('button', { type: 'button', class: 'c-vote c-like', 'aria-pressed': String(mine === 1), title: t('like') },
        h('span', { 'aria-hidden': 'true' }, '▲'), h('span', { class: 'c-n' }));
      const dislike = h('button', { type: 'button', class: 'c-vote c-dislike', 'aria-pressed': String(mine === -1), title: t('dislike') },
        h('span', { 'aria-hidden': 'true' }, '▼'), h('span', { class: 'c-n' }));
      voteCounts(like, dislike, c);
      const vote = async (want) => {
        const cur = myVotes.get(c.id) || 0;
        const value = cur === want ? 0 : want;
        like.disabled = dislike.disabled = true;
        try {
          const r = await api('POST', '/comments/' + c.id + '/vote', { value });
          c.likes = r.likes; c.dislikes = r.dislikes;
          myVotes.set(c.id, r.my_vote || null);
          setVotes(entry);
          markVote(entry, r.my_vote);
        } catch (e) {
          showSlotError(entry, e);
        } finally { like.disabled = dislike.disabled = false; }
      };
      on(like, 'click', () => vote(1));
      on(dislike, 'click', () => vote(-1));
      entry.reacts = reactBar(c, c.id, '/comments/' + c.id + '/reactions', false, (e) => showSlotError(entry, e));
      bar.append(like, dislike, entry.reacts);
      if (!(thread && thread.closed)) {
        bar.append(h('button', { type: 'button', class: 'c-act c-reply', onclick: (e) => openReply(entry, e.currentTarget) }, t('reply')));
      }
    }
    if (isOwn(c)) {
      bar.append(
        h('button', { type: 'button', class: 'c-act c-edit', onclick: (e) => openEdit(entry, e.currentTarget) }, t('edit')),
        h('button', { type: 'button', class: 'c-act c-delete', onclick: (e) => openDelete(entry, e.currentTarget) }, t('delete')));
    }
    if (approved && !isOwn(c)) {
      const flagged = !!myFlags.get(c.id);
      bar.append(h('button', { type: 'button', class: 'c-act c-flag', disabled: flagged, onclick: (e) => openFlag(entry, e.currentTarget) }, flagged ? t('flagged') : t('flag')));
    }
    if (isModerator()) bar.append(modMenu(entry));
    return bar;
  }

  // ---------------------------------------------------------------------------------------
  // Reactions: a fixed set of emoji, one of each per reader, on each comment and on the page.
  // Counts come with the page; the reader's own with their votes (syncVotes). A comment shows
  // only the reactions it has, beside a button that opens the set; the page shows the set.
  const REACTIONS = [['like', '👍'], ['love', '❤️'], ['laugh', '😂'], ['wow', '😮'], ['sad', '😢'], ['party', '🎉']];
  const myReacts = new Map(); // comment or thread id -> Set of reaction names
  function reactBar(obj, id, path, all, fail) {
    const el = h('span', { class: 'c-reacts' });
    const send = async (k, btn) => {
      btn.disabled = true;
      try {
        const r = await api('POST', path, { emoji: k, on: !(myReacts.get(id) || new Set()).has(k) });
        obj.reactions = r.reactions;
        myReacts.set(id, new Set(r.mine));
        el.draw();
        (el.querySelector('.c-react[data-r="' + k + '"]') || el.querySelector('.c-react-add')).focus();
      } catch (e) { btn.disabled = false; fail(e); }
    };
    el.draw = () => {
      const n = obj.reactions || {}, mine = myReacts.get(id) || new Set();
      const btn = (cls, [k, e], label, count) => h('button', {
        type: 'button', class: cls, 'data-r': k, 'aria-pressed': String(mine.has(k)), 'aria-label': label, title: t('react_' + k),
        onclick: (ev) => send(k, ev.currentTarget),
      }, h('span', { 'aria-hidden': 'true' }, e), count ? h('span', { class: 'c-n' }, String(count)) : null);
      const chips = REACTIONS.filter(([k]) => all || n[k] > 0)
        .map((r) => btn('c-react', r, t('reaction_label', { name: t('react_' + r[0]), n: n[r[0]] || 0 }), n[r[0]]));
      if (all) return el.replaceChildren(...chips);
      const pick = h('span', { class: 'c-react-pick', role: 'group', 'aria-label': t('react'), hidden: true },
        REACTIONS.map((r) => btn('c-react-opt', r, t('react_' + r[0]))));
      const add = h('button', { type: 'button', class: 'c-react-add', 'aria-expanded': 'false', 'aria-label': t('react'), title: t('react') },
        h('span', { 'aria-hidden': 'true' }, '☺+'));
      const show = (open) => { pick.hidden = !open; add.setAttribute('aria-expanded', String(open)); if (open) pick.firstChild.focus(); };
      on(add, 'click', () => show(pick.hidden));
      on(pick, 'keydown', (ev) => { if (ev.key === 'Escape') { show(false); add.focus(); } });
      el.replaceChildren(...chips, add, pick);
    };
    el.draw();
    return el;
  }
  function renderPageReacts() {
    if (!ui) return;
    if (!thread || !thread.id) { ui.pageReacts.replaceChildren(); return; }
    const fail = (e) => ui.pageReacts.querySelector('.c-error') || ui.pageReacts.append(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
    ui.pageReacts.replaceChildren(h('div', { class: 'c-page-reacts', role: 'group', 'aria-label': t('page_reactions') },
      reactBar(thread, thread.id, '/threads/' + encodeURIComponent(thread.id) + '/reactions', true, fail)));
  }

  // ---------------------------------------------------------------------------------------
  // Moderating in place: a signed-in moderator of this forum gets a small menu on each
  // comment (delete, mark as spam, ban its author); the server checks the right again.
  function isModerator() {
    return !!(me && me.moderates && me.moderates.includes(cfg.forum));
  }
  function modMenu(entry) {
    const { c } = entry;
    const menuId = 'confab-m-' + c.id;
    const menu = h('div', { class: 'c-mod-menu', id: menuId, role: 'menu', hidden: true });
    const opener = h('button', { type: 'button', class: 'c-act c-mod', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId }, t('mod_menu'));
    const close = () => { menu.hidden = true; opener.setAttribute('aria-expanded', 'false'); };
    on(opener, 'click', () => {
      const open = menu.hidden;
      menu.hidden = !open;
      opener.setAttribute('aria-expanded', String(open));
      if (open) menu.querySelector('button').focus();
    });
    on(menu, 'keydown', (e) => { if (e.key === 'Escape') { close(); opener.focus(); } });
    const item = (cls, label, fn) => h('button', { type: 'button', role: 'menuitem', class: 'c-mod-item ' + cls, onclick: async () => {
      close();
      try { await fn(); } catch (e) { showSlotError(entry, e); }
    } }, label);
    const forum = '/forums/' + encodeURIComponent(cfg.forum);
    const moderate = async (action, note) => {
      await api('POST', forum + '/moderate', { ids: [c.id], action });
      modDone(entry, note);
    };
    // Pin (or unpin) a published top-level comment: first on the thread's first page.
    const pinned = !!(thread && thread.pinned_id === c.id);
    if (thread && !c.parent_id && c.status === 'approved') {
      menu.append(item('c-mod-pin', t(pinned ? 'mod_unpin' : 'mod_pin'), async () => {
        await api('PATCH', '/threads/' + encodeURIComponent(thread.id), { pinned: pinned ? '' : c.id });
        await loadFirst();
        announce(t(pinned ? 'mod_unpinned' : 'mod_pinned'));
      }));
    }
    // Feature (or unfeature) a published comment: listed under the "Featured" tab.
    if (c.status === 'approved') {
      menu.append(item('c-mod-feature', t(c.featured ? 'mod_unfeature' : 'mod_feature'), async () => {
        const r = await api('POST', '/comments/' + encodeURIComponent(c.id) + '/feature', { featured: !c.featured });
        c.featured = r.featured;
        replaceEntry(entry);
        announce(t(r.featured ? 'mod_featured' : 'mod_unfeatured'));
      }));
    }
    menu.append(
      item('c-mod-delete', t('mod_delete'), () => moderate('delete', t('mod_deleted'))),
      item('c-mod-spam', t('mod_spam'), () => moderate('spam', t('mod_spammed'))),
      item('c-mod-ban', t('mod_ban'), async () => {
        // The author's account or e-mail if they have one, else their address for a day.
        await api('POST', forum + '/bans', { comment_id: c.id, reason: t('mod_ban_reason') });
        showSlotNote(entry, t('mod_banned'));
      }));
    return h('span', { class: 'c-mod-wrap' }, opener, menu);
  }
  // A comment a moderator removed leaves the page at once (its replies stay, under a note).
  function modDone(entry, note) {
    const kids = entry.li.querySelector(':scope > article > .c-main > .c-replies > li');
    if (!kids) { byId.delete(entry.c.id); entry.li.remove(); announce(note); return; }
    const body = entry.li.querySelector(':scope > article > .c-main > .c-body');
    body.replaceChildren(h('p', { class: 'c-muted' }, note));
    const bar = entry.li.querySelector(':scope > article > .c-main > .c-actions');
    if (bar) bar.remove();
    announce(note);
  }
  function showSlotNote(entry, text) {
    slotOf(entry).replaceChildren(h('p', { class: 'c-note', role: 'status' }, text));
  }

  // A link to a comment in place (#comment-<id>, as the dashboard makes them): scroll to it
  // and mark it, once it is shown.
  function showTarget() {
    const m = /^#comment-(\d+)$/.exec(location.hash || '');
    const entry = m && byId.get(m[1]);
    if (!entry) return;
    const art = entry.li.querySelector(':scope > article');
    art.classList.add('is-target');
    art.scrollIntoView({ block: 'center' });
    art.focus({ preventScroll: true });
  }
  on(window, 'hashchange', showTarget);

  function setVotes(entry) {
    const { c } = entry, bar = entry.li.querySelector(':scope > article > .c-main > .c-actions');
    const like = bar && bar.querySelector('.c-like'), dislike = bar && bar.querySelector('.c-dislike');
    if (!like) return;
    voteCounts(like, dislike, c);
  }
  /** A vote button's count and label: a count of 0 shows nothing ("Like", not "Like (0)"). */
  function voteCounts(like, dislike, c) {
    for (const [b, n, one, many] of [[like, c.likes, 'like', 'likes_label'], [dislike, c.dislikes, 'dislike', 'dislikes_label']]) {
      b.querySelector('.c-n').textContent = n ? num(n) : '';
      b.setAttribute('aria-label', n ? t(many, { n: num(n) }) : t(one));
    }
  }

  function markVote(entry, v) {
    const bar = entry.li.querySelector(':scope > article > .c-main > .c-actions');
    const like = bar && bar.querySelector('.c-like'), dislike = bar && bar.querySelector('.c-dislike');
    if (!like) return;
    like.setAttribute('aria-pressed', String(v === 1)); dislike.setAttribute('aria-pressed', String(v === -1));
  }

  function slotOf(entry) { return entry.li.querySelector(':scope > article > .c-main > .c-slot'); }
  function showSlotError(entry, e) {
    slotOf(entry).replaceChildren(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
  }
  function closeSlot(entry, refocus) {
    slotOf(entry).replaceChildren();
    entry.li.querySelector(':scope > article').classList.remove('is-editing');
    if (refocus && refocus.isConnected) refocus.focus();
  }

  function openReply(entry, opener) {
    const slot = slotOf(entry);
    if (slot.querySelector('.is-reply')) { slot.querySelector('textarea').focus(); return; }
    const form = composeForm({
      parent: entry.c,
      onCancel: () => closeSlot(entry, opener),
      onDone: () => closeSlot(entry),
    });
    slot.replaceChildren(form);
    form.querySelector('textarea').focus();
  }

  function openEdit(entry, opener) {
    const slot = slotOf(entry);
    const art = entry.li.querySelector(':scope > article');
    art.classList.add('is-editing');
    const form = composeForm({
      comment: entry.c,
      onCancel: () => closeSlot(entry, opener),
      onDone: (c) => {
        Object.assign(entry.c, { body: c.body, body_html: c.body_html, edited_at: c.edited_at });
        slotOf(entry).replaceChildren();
        replaceEntry(entry, true);
        announce(t('saved') + ' ✓');
      },
    });
    slot.replaceChildren(form);
    const ta = form.querySelector('textarea');
    ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length);
  }

  /**
   * Re-renders one comment in place, keeping its loaded replies, whatever is open in its slot
   * (a reply being written), its collapsed state, and focus. `focus`: move focus to it.
   */
  function replaceEntry(entry, focus) {
    const old = entry.li, sel = ':scope > article > .c-main > ';
    const kids = Array.from(old.querySelectorAll(sel + '.c-replies > li'));
    const slot = old.querySelector(sel + '.c-slot');
    const act = root.activeElement;
    const inSlot = act && slot.contains(act);
    const inMe = act && old.contains(act) && !inSlot && !old.querySelector(sel + '.c-replies').contains(act);
    const el = renderComment(Object.assign({}, entry.c, { replies: [] }));
    el.querySelector(sel + '.c-replies').append(...kids);
    el.querySelector(sel + '.c-slot').append(...slot.childNodes);
    renderMoreReplies(byId.get(entry.c.id));
    steady(() => old.replaceWith(el));
    if (old.classList.contains('is-collapsed')) el.querySelector('.c-toggle').click();
    if (focus || inMe) el.querySelector('article').focus({ preventScroll: !focus });
    else if (inSlot) act.focus({ preventScroll: true });
  }

  function openDelete(entry, opener) {
    const slot = slotOf(entry);
    const yes = h('button', { type: 'button', class: 'c-btn c-danger' }, t('delete'));
    const box = h('div', { class: 'c-confirm', role: 'group', 'aria-label': t('confirm_delete') },
      h('p', {}, t('confirm_delete')),
      h('div', { class: 'c-row' }, h('span', { class: 'c-grow' }),
        h('button', { type: 'button', class: 'c-btn', onclick: () => closeSlot(entry, opener) }, t('cancel')), yes));
    on(box, 'keydown', (e) => { if (e.key === 'Escape') closeSlot(entry, opener); });
    on(yes, 'click', async () => {
      yes.disabled = true;
      try {
        const c = await api('DELETE', '/comments/' + entry.c.id, undefined, editHeader(entry.c.id));
        const wasVisible = entry.c.status === 'approved';
        editTokens.set(entry.c.id, null);
        if (wasVisible) setCount(Math.max(0, count - 1));
        announce(t('deleted_done'));
        const hasKids = entry.li.querySelector(':scope > article > .c-main > .c-replies > li');
        if (hasKids) { entry.c = Object.assign(entry.c, c, { status: 'deleted' }); slotOf(entry).replaceChildren(); replaceEntry(entry, true); } else {
          const next = entry.li.nextElementSibling || entry.li.parentElement.closest('article');
          entry.li.remove(); byId.delete(entry.c.id);
          if (next) (next.matches('article') ? next : next.querySelector('article')).focus();
        }
      } catch (e) {
        yes.disabled = false;
        box.append(h('p', { class: 'c-error', role: 'alert' }, errorText(e)));
      }
    });
    slot.replaceChildren(box);
    yes.focus();
  }

  function openFlag(entry, opener) {
    const slot = slotOf(entry);
    const id = nextId('fl');
    const input = h('input', { id, type: 'text', maxlength: 200, name: 'reason' });
    const err = h('p', { class: 'c-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'c-btn c-primary' }, t('flag_submit'));
    const form = h('form', { class: 'c-flag-form' },
      h('div', { class: 'c-field' }, h('label', { for: id }, t('flag_reason')), input), err,
      h('div', { class: 'c-row' }, h('span', { class: 'c-grow' }),
        h('button', { type: 'button', class: 'c-btn', onclick: () => closeSlot(entry, opener) }, t('cancel')), submit));
    on(form, 'keydown', (e) => { if (e.key === 'Escape') closeSlot(entry, opener); });
    on(form, 'submit', async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        await api('POST', '/comments/' + entry.c.id + '/flag', { reason: input.value || null });
        myFlags.set(entry.c.id, 1);
        slot.replaceChildren(h('p', { class: 'c-notice', role: 'status' }, t('flag_thanks')));
        opener.textContent = t('flagged'); opener.disabled = true;
      } catch (ex) {
        submit.disabled = false;
        err.textContent = errorText(ex);
      }
    });
    slot.replaceChildren(form);
    input.focus();
  }

  // ---------------------------------------------------------------------------------------
  // Live: the thread's changes as Server-Sent Events. Each change carries the thread's
  // sequence number, which moves by exactly one per change: a gap means we missed something,
  // and the first page is read again and merged in place ("resync"). New top-level comments
  // from others wait behind an "N new comments" button, so the list never moves under the
  // reader; replies, edits, removals and votes apply in place. Nothing here takes focus, and
  // changes above the reader's viewport are compensated so the page doesn't jump.
  const LIVE_EVENTS = ['hello', 'comment.created', 'comment.updated', 'comment.removed', 'comment.voted',
    'comment.reacted', 'thread.reacted', 'thread.updated', 'thread.changed', 'resync', 'degraded', 'reconnect', 'poll'];
  let es = null, liveOn = false, liveSeq = null, liveQ = [], hold = 0, backoff = 0, liveTimer = 0, pollTimer = 0, hideTimer = 0;
  let fresh = [], replyTally = 0, tellTimer = 0, resyncing = false, resyncAgain = false;

  function liveStart() {
    liveStop();
    if (!liveOn || !window.EventSource || document.hidden) return;
    const q = new URLSearchParams({ forum: cfg.forum, ident: cfg.ident });
    const src = es = new EventSource(API + '/threads/live?' + q);
    const got = (e) => {
      if (src !== es) return;
      let d;
      try { d = JSON.parse(e.data); } catch (x) { return; }
      if (e.type === 'reconnect') { liveLater((d.retry_ms || 1000) * (1 + Math.random())); return; } // this node is going away
      // Live updates are switched off for now: poll, as after `degraded`, and try again later.
      if (e.type === 'poll') { poll(d.poll_ms || 15000); liveLater((d.retry_ms || 60000) * (0.75 + Math.random() / 2)); return; }
      liveQ.push([e.type, d]);
      pump();
    };
    LIVE_EVENTS.forEach((n) => on(src, n, got));
    // Refused (503, a proxy's error page) or cut off: reconnect ourselves, backing off 1 s → 30 s.
    // The `hello` of the new connection tells us whether anything moved meanwhile.
    src.onerror = () => { if (src === es) liveLater((backoff = Math.min(30000, backoff * 2 || 1000)) * (0.75 + Math.random() / 2)); };
  }
  function liveStop(all) {
    if (es) { es.close(); es = null; }
    clearTimeout(liveTimer); liveTimer = 0;
    if (all) poll(0); // otherwise polling (after `degraded`) goes on until a `hello` or `resync`
    if (ui) ui.root.dataset.live = pollTimer ? 'poll' : 'off';
  }
  function poll(ms) {
    clearInterval(pollTimer);
    pollTimer = ms ? setInterval(resync, Math.max(2000, ms)) : 0;
    if (ui) ui.root.dataset.live = ms ? 'poll' : es ? 'on' : 'off';
  }
  function liveLater(ms) {
    liveStop();
    liveTimer = setTimeout(() => { liveTimer = 0; liveStart(); }, ms);
  }
  // A tab hidden for five minutes lets its connection go; showing it again reconnects.
  on(document, 'visibilitychange', () => {
    clearTimeout(hideTimer);
    if (document.hidden) hideTimer = setTimeout(() => liveStop(true), 300000);
    else if (liveOn && !es && !liveTimer) liveStart();
  });

  /** Applies queued events in order, unless a request is in flight (see api()). */
  function pump() {
    while (!hold && liveQ.length) {
      const [name, d] = liveQ.shift();
      try { liveEvent(name, d); } catch (e) { if (window.console) console.warn('Confab: live event', name, e); }
    }
  }

  function liveEvent(name, d) {
    if (name === 'degraded') { poll(d.poll_ms || 15000); return; } // the server can't follow the thread: poll until `resync`
    if (name === 'resync') { poll(0); liveSeq = null; resync(); return; }
    const seq = d.thread_seq;
    if (typeof seq !== 'number') return;
    if (name === 'hello') {
      backoff = 0;
      poll(0);
      if (liveSeq != null && seq !== liveSeq) resync(); // the thread moved while we weren't listening
      liveSeq = seq;
      return;
    }
    if (liveSeq != null && seq <= liveSeq) return; // old or repeated
    const gap = liveSeq != null && seq > liveSeq + 1;
    liveSeq = seq;
    if (name === 'comment.created') created(d.comment);
    else if (name === 'comment.updated') updated(d.comment);
    else if (name === 'comment.removed') removed(d.id);
    else if (name === 'comment.voted') voted(d);
    else if (name === 'comment.reacted') reacted(d);
    else if (name === 'thread.reacted') { if (thread) { thread.reactions = d.reactions; renderPageReacts(); } }
    else if (name === 'thread.updated') threadUpdated(d);
    if (gap) resync();
  }

  /** A comment in `list` (comments with their `replies`), at any depth, with the array holding it. */
  function findIn(list, id) {
    for (const c of list) {
      if (c.id === id) return [c, list];
      const r = findIn(c.replies || [], id);
      if (r) return r;
    }
    return null;
  }

  function created(c) {
    if (byId.has(c.id) || findIn(fresh, c.id)) { updated(c); return; } // our own, or already merged
    if (c.status !== 'approved') return;
    setCount(count + 1);
    arrived(c);
  }

  /** A comment that isn't on screen: top level waits for the button, a reply goes under its parent. */
  function arrived(c) {
    if (c.created_at > newest) newest = c.created_at;
    if (!c.parent_id) {
      const empty = ui.list.querySelector('.c-empty'); // "Be the first…" no longer holds
      if (empty) steady(() => empty.remove());
      fresh.push(c); renderFresh(); tell();
      return;
    }
    const p = byId.get(c.parent_id);
    if (p) {
      p.c.reply_count = (p.c.reply_count || 0) + 1;
      const li = renderComment(c);
      li.classList.add('is-new');
      steady(() => p.li.querySelector(':scope > article > .c-main > .c-replies').append(li));
      replyTally++; tell();
      return;
    }
    const f = findIn(fresh, c.parent_id); // a reply to a comment still behind the button
    if (f) { f[0].replies = (f[0].replies || []).concat(c); f[0].reply_count = (f[0].reply_count || 0) + 1; }
  }

  /** New text, status or counts for a comment we have, on screen or behind the button. */
  function updated(c) {
    const e = byId.get(c.id);
    if (!e) {
      const f = findIn(fresh, c.id);
      if (f) f[1][f[1].indexOf(f[0])] = Object.assign(c, { replies: f[0].replies, reply_count: f[0].reply_count });
      return;
    }
    const old = e.c, was = old.status, html = old.body_html, edited = old.edited_at, feat = !!old.featured, pics = JSON.stringify(old.images || []);
    const { replies, replies_cursor, reply_count, ...rest } = c; // keep what we loaded of its replies
    Object.assign(old, rest);
    old.images = c.images || []; // left out when there are none (a moderator removed the last)
    if (e.reacts) e.reacts.draw();
    if (old.status !== was || !!old.featured !== feat || JSON.stringify(old.images) !== pics) {
      if (old.status !== was) {
        if (old.status === 'approved') setCount(count + 1); else if (was === 'approved') setCount(Math.max(0, count - 1));
      }
      replaceEntry(e);
      return;
    }
    if (was !== 'deleted' && (old.body_html !== html || old.edited_at !== edited)) {
      const main = e.li.querySelector(':scope > article > .c-main');
      const body = main.querySelector(':scope > .c-body');
      const meta = main.querySelector(':scope > .c-head-row > .c-meta');
      steady(() => {
        body.replaceChildren(bodyFragment(old.body_html));
        const mark = meta.querySelector('.c-edited');
        if (mark) mark.remove();
        if (old.edited_at) meta.insertBefore(h('span', { class: 'c-edited', title: t('edited_at', { time: exactTime(old.edited_at) }) }, '(' + t('edited') + ')'), meta.querySelector('.c-badge-pending'));
      });
    }
    setVotes(e);
  }

  function removed(id) {
    const f = findIn(fresh, id);
    if (f) {
      f[1].splice(f[1].indexOf(f[0]), 1);
      setCount(Math.max(0, count - 1));
      renderFresh();
      if (!fresh.length && !ui.list.children.length) ui.list.append(h('li', { class: 'c-empty' }, t('empty')));
      return;
    }
    const e = byId.get(id);
    if (!e || e.c.status === 'deleted') return;
    if (e.c.status === 'approved') setCount(Math.max(0, count - 1));
    if (e.li.querySelector(':scope > article > .c-main > .c-replies > li')) {
      e.c.status = 'deleted'; // its replies stay, under "This comment was deleted."
      replaceEntry(e);
    } else drop(e);
  }

  /** Takes a comment off the screen; focus inside it moves to its neighbour or parent. */
  function drop(e) {
    const { li } = e;
    const act = root.activeElement;
    const next = act && li.contains(act) ? (li.nextElementSibling || li.previousElementSibling || li.parentElement.closest('li')) : null;
    const p = li.parentElement && li.parentElement.closest('li');
    const pe = p && byId.get(p.dataset.id);
    if (pe) pe.c.reply_count = Math.max(0, (pe.c.reply_count || 0) - 1);
    li.querySelectorAll('li').forEach((x) => byId.delete(x.dataset.id));
    byId.delete(e.c.id);
    steady(() => li.remove());
    if (next && next.matches('li')) next.querySelector('article').focus({ preventScroll: true });
  }

  function voted(d) {
    const e = byId.get(d.id);
    const c = e ? e.c : (findIn(fresh, d.id) || [])[0];
    if (!c) return;
    c.likes = d.likes; c.dislikes = d.dislikes;
    if (e) setVotes(e);
  }

  function reacted(d) {
    const e = byId.get(d.id);
    const c = e ? e.c : (findIn(fresh, d.id) || [])[0];
    if (!c) return;
    c.reactions = d.reactions;
    if (e && e.reacts) e.reacts.draw();
  }

  function threadUpdated(d) {
    if (!thread) thread = {};
    const was = !!thread.closed;
    thread.closed = !!d.closed;
    if (d.title != null) thread.title = d.title;
    if (was === thread.closed) return;
    steady(() => {
      renderNotices();
      const ta = ui.compose.querySelector('textarea');
      // Closing keeps a half-written comment (the server will refuse it, but the text isn't lost).
      if (!thread.closed) renderCompose(); else if (!ta || !ta.value.trim()) ui.compose.replaceChildren();
    });
  }

  /** The "N new comments" button. It never takes focus by itself. */
  function renderFresh() {
    let btn = ui.fresh.firstChild;
    const n = fresh.length;
    if (!n) { if (btn) steady(() => btn.remove()); return; }
    const text = tn('new_comments', n);
    if (btn) btn.textContent = text;
    else steady(() => ui.fresh.append(h('button', { type: 'button', class: 'c-btn c-fresh', onclick: reveal }, text)));
  }

  /**
   * New top-level comments (oldest first) into the list: under "Oldest" at the end (before any
   * page not loaded yet, see renderMore), else at the top, newest first.
   */
  function addTop(els) {
    if (sort === 'oldest') { els.forEach((li) => li.classList.add('is-tail')); ui.list.append(...els); } else ui.list.prepend(...els.reverse());
  }

  /** Shows the waiting comments (see addTop) and moves focus to the first of them. */
  function reveal() {
    const els = fresh.filter((c) => !byId.has(c.id)).map(renderComment);
    fresh = [];
    const empty = ui.list.querySelector('.c-empty');
    if (empty) empty.remove();
    els.forEach((li) => li.classList.add('is-new'));
    addTop(els);
    renderFresh();
    if (els[0]) els[0].querySelector('article').focus();
  }

  /** Tells screen readers about arrivals, once things settle. */
  function tell() {
    clearTimeout(tellTimer);
    tellTimer = setTimeout(() => {
      const m = [];
      if (fresh.length) m.push(tn('new_comments', fresh.length));
      if (replyTally) m.push(tn('new_replies', replyTally));
      replyTally = 0;
      if (m.length) announce(m.join('. '));
    }, 1000);
  }

  /**
   * Runs `fn`, a change to the widget, keeping what's at the top of the viewport where it is
   * when the change happens above it. (Browsers with scroll anchoring already do; then this
   * finds nothing to correct.)
   */
  function steady(fn) {
    let anchor = null, top = 0;
    for (const el of root.querySelectorAll('.c-head, .c-compose-slot, .c-fresh-slot, .c-head-row, .c-body, .c-actions, .c-slot, .c-more-slot')) {
      const r = el.getBoundingClientRect();
      if (r.height && r.bottom > 0) { anchor = el; top = r.top; break; }
    }
    fn();
    if (anchor && anchor.isConnected) {
      const d = anchor.getBoundingClientRect().top - top;
      if (d) window.scrollBy(0, d);
    }
  }

  /** Reads the first page again and merges it in place (the reader's drafts and scroll stay). */
  async function resync() {
    if (resyncing || busyLoading) { resyncAgain = resyncing; return; }
    resyncing = true;
    const ident = cfg.ident, s = sort;
    try {
      const page = await api('GET', pagePath());
      if (ident === cfg.ident && s === sort && !busyLoading) merge(page);
    } catch (e) { /* the next event, poll or reconnect tries again */ }
    resyncing = false;
    if (resyncAgain) { resyncAgain = false; resync(); }
  }

  function merge(page) {
    const seen = new Set(), since = newest; // top-level comments not on screen and newer than this are new
    const walk = (list) => list.forEach((c) => {
      seen.add(c.id);
      if (byId.has(c.id) || findIn(fresh, c.id)) updated(c);
      else if (c.parent_id ? byId.has(c.parent_id) : c.created_at > since) arrived(c);
      if (byId.has(c.id)) walk(c.replies || []);
    });
    walk(page.comments);
    // What the page covers completely and no longer has is gone.
    const prune = (ol) => ol && Array.from(ol.children).forEach((li) => {
      const e = byId.get(li.dataset.id);
      if (e && !seen.has(e.c.id)) drop(e);
    });
    if (!page.next_cursor) { prune(ui.list); fresh = fresh.filter((c) => seen.has(c.id)); renderFresh(); }
    const inPage = (list) => list.forEach((c) => {
      const e = byId.get(c.id);
      if (e && !c.replies_cursor) prune(e.li.querySelector(':scope > article > .c-main > .c-replies'));
      inPage(c.replies || []);
    });
    inPage(page.comments);
    if (page.thread) {
      const d = { closed: page.thread.closed, title: page.thread.title };
      page.thread.closed = !!(thread && thread.closed);
      thread = page.thread;
      threadUpdated(d);
      renderPageReacts();
      if (liveSeq == null || thread.seq > liveSeq) liveSeq = thread.seq;
      setCount(thread.comment_count);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Comment counts: every [data-confab-count] on the page, one request per forum per 100.
  async function fillCounts() {
    const els = Array.from(document.querySelectorAll('[data-confab-count]'));
    const groups = new Map();
    for (const el of els) {
      const forum = el.getAttribute('data-confab-forum') || cfg.forum;
      const ident = el.getAttribute('data-confab-count');
      if (!forum || !ident) continue;
      if (!groups.has(forum)) groups.set(forum, new Map());
      const g = groups.get(forum);
      if (!g.has(ident)) g.set(ident, []);
      g.get(ident).push(el);
    }
    for (const [forum, g] of groups) {
      const idents = Array.from(g.keys());
      for (let i = 0; i < idents.length; i += 100) {
        const q = new URLSearchParams({ forum });
        idents.slice(i, i + 100).forEach((x) => q.append('ident', x));
        try {
          const res = await fetch(API + '/counts?' + q, { credentials: 'omit', mode: 'cors' });
          if (!res.ok) continue;
          const { counts } = await res.json();
          for (const [ident, n] of Object.entries(counts)) {
            (g.get(ident) || []).forEach((el) => { el.textContent = tn('count', n); el.setAttribute('data-confab-filled', String(n)); });
          }
        } catch (e) { /* leave the link's own text */ }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Start.
  async function start(extra) {
    if (extra) cfg = readConfig(extra);
    // Another language's catalog comes before the first render, beside the sign-in requests.
    const cat = loadCatalog(cfg.lang);
    const auth = () => Promise.all([ssoSignIn(), authProviders.length ? null : loadProviders()]);
    const authed = cat && cfg.forum ? auth() : null;
    setStrings(cat && await cat);
    sort = ['best', 'newest', 'oldest'].includes(store.get('sort')) ? store.get('sort') : 'best';
    fillCounts();
    liveOn = false; liveStop(true); liveQ = []; liveSeq = null;
    const mounted = mount(!extra); // included HTML is for the page's own thread, not a reload
    if (!mounted) return;
    ui.root.setAttribute('aria-busy', 'true');
    await (authed || auth());
    // A session that has ended (401 drops it) is signed in again from the site's token, if any.
    const who = session && session.token ? api('GET', '/me').then((a) => { me = a; }, () => ssoSignIn()) : null;
    // A server-rendered first page is used as is when it is what this reader would get.
    const hydrate = mounted !== true && mounted.sort === sort && !store.get('anon') && !(session && session.token) ? mounted.page : null;
    if (who && !hydrate) await who;
    renderUser();
    await loadFirst(hydrate);
    if (who && hydrate) { await who; renderUser(); }
  }

  setInterval(() => {
    if (!root) return;
    root.querySelectorAll('time[data-rel]').forEach((el) => { el.textContent = relTime(el.getAttribute('datetime')); });
  }, 60000);

  window.Confab = {
    /** Shows another thread in place (single-page sites): Confab.reload({ident, url, title}). */
    reload: (extra) => start(extra || {}),
    /** Fills [data-confab-count] elements added after load. */
    counts: () => fillCounts(),
    version: 1,
  };

  if (document.readyState === 'loading') on(document, 'DOMContentLoaded', () => start(), { once: true });
  else start();
})();
