// Confab moderation dashboard. Same origin as the API: the session is the HttpOnly cookie set
// at sign-in (scripts never see it), and every write is JSON (an import's upload:
// application/octet-stream), which a cross-site form cannot send.
// User-provided text goes in as text nodes; comment bodies are the server's sanitized HTML.
// Every string a moderator reads is in STRINGS (English); other languages are catalogs at
// /i18n/admin/LANG.json (web/src/i18n/admin/), chosen by ?lang= or the browser's languages.
(() => {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Strings: the one table to translate. {name} placeholders are filled at run time; plural
  // entries are {one, other, ...} chosen with Intl.PluralRules.
  const STRINGS = {
    // The page (admin.html: data-i18n="key" fills an element, {0} {1} are its own child elements;
    // data-i18n-placeholder / -aria-label / -title fill that attribute).
    page_title: 'Confab moderation',
    skip: 'Skip to content',
    login_note: 'Sign in with a moderator account. An operator creates one with {0}.',
    login_name: 'Username or e-mail',
    password: 'Password',
    sign_in: 'Sign in',
    brand: 'Confab {0}',
    brand_sub: 'moderation',
    forum_pick: 'Forum {0}',
    demo_page: 'Demo page',
    sign_out: 'Sign out',
    stats_title: 'Comments per day',
    sections: 'Sections',
    tab_queue: 'Comments',
    tab_bans: 'Bans',
    tab_settings: 'Settings',
    tab_log: 'Log',
    tab_moderators: 'Moderators',
    tab_switches: 'Switches',
    queue: 'Queue',
    queue_pending: 'Pending {0}',
    queue_flagged: 'Flagged {0}',
    queue_spam: 'Spam {0}',
    queue_deleted: 'Deleted',
    queue_approved: 'Approved',
    queue_all: 'All',
    search: 'Search',
    search_placeholder: 'Search author, e-mail, IP hash or text',
    clear: 'Clear',
    bulk_actions: 'Bulk actions',
    select_all: 'Select all',
    act_approve: 'Approve',
    act_spam: 'Spam',
    act_delete: 'Delete',
    act_restore: 'Restore',
    ban_authors: 'Ban authors',
    items_label: 'Comments in this queue',
    nothing_here: 'Nothing here.',
    older_comments: 'Older comments',
    add_ban: 'Add a ban',
    ban_kind: 'Kind {0}',
    kind_email: 'E-mail',
    kind_ip: 'IP or IP hash',
    kind_account: 'Account id',
    ban_value: 'Value {0}',
    ban_reason: 'Reason {0}',
    shadow_title: 'The author may still post and sees their comments as published; nobody else sees them (they go to the Spam queue)',
    shadow_ban: '{0} Shadow ban',
    ban: 'Ban',
    col_kind: 'Kind',
    col_matches: 'Matches',
    col_reason: 'Reason',
    col_by: 'By',
    col_since: 'Since',
    col_until: 'Until',
    col_actions: 'Actions',
    no_bans: 'No bans.',
    reader_title: 'A reader\'s data, on their request',
    reader_note: 'An account (username) or a guest (the e-mail address they commented with): export or erase what they left on this forum. Erasing clears their name, e-mail, site and IP; the text is kept as by "deleted user", or removed.',
    reader_who: 'Reader {0}',
    reader_who_placeholder: 'username or e-mail',
    reader_comments: 'Comments {0}',
    reader_keep: 'keep as "deleted user"',
    reader_remove: 'remove',
    reader_download: 'Download data',
    reader_erase: 'Erase on this forum',
    reader_staff_download: 'Download whole account',
    reader_staff_delete: 'Delete whole account',
    ban_dialog_title: 'Ban {0}',
    ban_what: 'What',
    ban_how_long: 'For how long',
    ban_day: '{0} 1 day',
    ban_week: '{0} 1 week',
    ban_forever: '{0} Forever',
    ban_why: 'Why {0}',
    ban_why_note: '(shown in the ban list and to the author)',
    ban_why_placeholder: 'e.g. spam links',
    ban_ip_note: 'An IP ban also stops everyone else on that network (a household, an office, a phone carrier); it lasts a day unless you say otherwise, and never applies to you or other moderators.',
    cancel: 'Cancel',
    s_title: 'Title',
    s_origins: 'Allowed origins {0}',
    s_origins_note: '(one per line; a port of {0} matches any port)',
    s_moderation: 'Moderation',
    s_mod_none: 'None: comments appear at once',
    s_mod_links: 'Links: comments with a link wait for approval',
    s_mod_pre: 'Pre-moderation: every comment waits for approval',
    s_guests: '{0} Guests may comment without an account',
    s_gravatar: '{0} Show Gravatar images {1}',
    s_gravatar_note: '(readers\' browsers then ask gravatar.com, with a hash of each author\'s e-mail address; off, avatars are drawn locally)',
    s_images: '{0} Readers may attach pictures {1}',
    s_images_note: '(JPEG, PNG, WebP, GIF; re-encoded without their metadata; you can remove any picture from the queue)',
    s_sso: 'SSO secret {0}',
    s_sso_placeholder: 'Leave empty to keep',
    s_sso_clear: '{0} Remove the SSO secret {1}',
    s_sso_clear_note: '(SSO sign-in stops)',
    s_window: 'Edit window {0}',
    s_window_note: '(minutes an author may edit or delete)',
    save_settings: 'Save settings',
    move_title: 'A page moved',
    move_note: 'Its comments follow it: the thread at the old address answers to the new one as well (and still to the old one). For many pages at once, use {0}.',
    move_from: 'Old address {0}',
    move_from_note: '(URL or identifier)',
    move_to: 'New address',
    move_submit: 'Move thread',
    import_title: 'Import comments',
    import_note: 'An export from another comment system (staff only). The file is imported in the background on the server that receives it, one import at a time; importing the same file again adds only what is new. {0}',
    import_format: 'Format',
    import_file: 'Export file {0}',
    import_file_note: '(as the system gave it; gzipped is fine)',
    import_upload: 'Upload',
    rules_title: 'Rules',
    rules_note: 'Checked on every new comment and every edit (moderators excepted). Words match without case and in any Unicode compatibility form (full-width letters are the plain ones), as whole words or phrases ({0} does not match {1}). Leave a field empty to turn its rule off.',
    r_block: 'Blocked words {0}',
    r_block_note: '(one per line; a comment containing one is refused)',
    r_hold: 'Held words {0}',
    r_hold_note: '(one per line; a comment containing one waits for approval)',
    r_links: 'Link limit {0}',
    r_links_note: '(a comment with more links waits for approval)',
    r_trust: 'New commenters {0}',
    r_trust_note: '(hold an author\'s comments until this many were approved; guests are counted by the e-mail address they give)',
    r_flags: 'Flags to hold {0}',
    r_flags_note: '(a published comment flagged by this many readers waits for a moderator)',
    r_dup: 'Repeated text {0}',
    r_dup_note: '(the same text posted this many times by one author or address within the minutes below is spam)',
    r_times_in: 'times in',
    r_dup_minutes: 'Repeated text: minutes',
    r_minutes: 'minutes',
    r_pow: '{0} Bot check for guests {1}',
    r_pow_note: '(a guest\'s browser solves a small proof-of-work puzzle while they type; no third party, nothing stored about the reader; signed-in readers skip it)',
    r_pow_difficulty: 'Bot check difficulty {0}',
    r_pow_difficulty_note: '(1000-1000000; the default 50000 takes a laptop well under a second)',
    r_spam_key: 'Akismet key {0}',
    r_spam_key_note: '(each comment is also checked by Akismet or a compatible service; shown masked; empty: off)',
    r_spam_when: 'When the spam check does not answer in time',
    r_spam_hold: 'Hold the comment for a moderator',
    r_spam_publish: 'Publish it (checked again in the background)',
    save_rules: 'Save rules',
    log_caption: 'Moderation log',
    col_when: 'When',
    col_who: 'Who',
    col_action: 'Action',
    col_thread: 'Thread',
    col_detail: 'Detail',
    log_empty: 'No moderation yet.',
    log_older: 'Older entries',
    add_moderator: 'Add a moderator',
    mod_username: 'Username {0}',
    make_moderator: 'Make moderator',
    mods_caption: 'Moderators of this forum',
    col_username: 'Username',
    col_name: 'Name',
    col_role: 'Role',
    mods_empty: 'This forum has no moderators of its own (staff moderate every forum).',
    mods_note: 'Removing a moderator ends their sessions on every node.',
    sw_note: 'Feature switches, for the whole site or one forum. Every switch is on unless a record says otherwise; a forum\'s record wins over the global one. With a selector (a share of readers, or staff), the record\'s value goes to the readers it selects and the opposite to the rest of its scope.',
    sw_set_label: 'Set a switch',
    sw_switch: 'Switch {0}',
    sw_value: 'Value {0}',
    off: 'off',
    on: 'on',
    sw_percent: 'Percent {0}',
    sw_all: 'all',
    sw_staff: '{0} Staff',
    sw_set: 'Set',
    sw_caption: 'Switch records',
    col_switch: 'Switch',
    col_scope: 'Scope',
    col_value: 'Value',
    col_selectors: 'Selectors',
    col_changed_by: 'Changed by',
    s_sso_note: '(readers signed in at your site sign in here; see the README\'s "SSO from your site")',
    // Built by this script.
    err_network: 'Could not reach the server.',
    signed_in_as: 'Signed in as {name}',
    no_forums: 'No forums',
    no_forums_note: 'This account moderates no forum. An operator can grant one with confab admin create-account … --moderator-of FORUM.',
    stats_total: { one: '{n} in the last 30 days', other: '{n} in the last 30 days' },
    chart_label: 'Comments per day for the last {days} days: {total} in total, at most {max} on one day.',
    ban_author: 'Ban author',
    done_approve: { one: '{n} comment approved.', other: '{n} comments approved.' },
    done_spam: { one: '{n} comment marked as spam.', other: '{n} comments marked as spam.' },
    done_delete: { one: '{n} comment deleted.', other: '{n} comments deleted.' },
    done_restore: { one: '{n} comment restored.', other: '{n} comments restored.' },
    search_for: 'Search for {value}',
    select_by: 'Select comment by {name}',
    account_id: 'account {id}',
    guest: 'guest',
    ip_chip: 'IP {hash}',
    search_ip: 'Search for this IP hash',
    status_pending: 'pending',
    status_approved: 'approved',
    status_spam: 'spam',
    status_deleted: 'deleted',
    flags: { one: '{n} flag', other: '{n} flags' },
    is_reply: 'reply',
    shadow_ban_author: 'Shadow-ban author',
    pic_open: 'Open the full picture',
    pic_alt: 'Picture attached by {name}',
    pic_remove: 'Remove picture',
    pic_removed: 'Picture removed.',
    selected: { one: '{n} selected', other: '{n} selected' },
    authors_banned: { one: 'Author banned.', other: '{n} authors banned.' },
    authors_shadow_banned: { one: 'Author shadow-banned.', other: '{n} authors shadow-banned.' },
    banned_toast: 'Banned.',
    exported: { one: 'Exported {n} comment.', other: 'Exported {n} comments.' },
    confirm_delete_account_keep: 'Delete the account {who} and keep its comments on every forum?',
    confirm_delete_account_remove: 'Delete the account {who} and remove its comments on every forum?',
    confirm_erase_keep: 'Erase what {who} left on {forum} (text kept as "deleted user")?',
    confirm_erase_remove: 'Erase what {who} left on {forum} (comments removed)?',
    cannot_undo: 'This cannot be undone.',
    erased: { one: 'Erased {n} comment.', other: 'Erased {n} comments.' },
    account_is_deleted: 'The account is deleted.',
    erasing: 'Erasing; the rest follows in the background.',
    a_thread: 'a thread',
    on_thread: 'On {0}',
    see_on_site: 'See this comment on the site',
    flagged_reasons: 'Flagged: {reasons}',
    no_reason: 'no reason given',
    author_history: 'Author: {approved} approved · {pending} pending · {spam} spam · {deleted} deleted · since {since}',
    author_history_title: 'This author on this site',
    ban_kind_account: 'Account',
    ban_kind_email: 'E-mail',
    ban_kind_ip: 'IP address',
    ban_kind_ip_email: 'IP + e-mail',
    n_authors: { one: '{n} author', other: '{n} authors' },
    ban_for_good: 'for good',
    ban_for_day: 'for a day',
    ban_for_week: 'for a week',
    authors_banned_for: { one: 'Author banned {until} ({kind}).', other: '{n} authors banned {until} ({kind}).' },
    you: 'you',
    bans_kind_email: 'email',
    bans_kind_ip: 'ip',
    bans_kind_account: 'account',
    shadow_kind: '{kind} (shadow)',
    lapsed_title: 'Lapsed: it no longer matches',
    lift_label: 'Lift ban on {value}',
    ban_lifted: 'Ban lifted.',
    lift: 'Lift',
    saved: 'Saved.',
    rules_saved: 'Rules saved.',
    s_sso_set: '(set; type a new one to replace it)',
    s_sso_unset: '(not set: readers signed in at your site sign in here once you set one)',
    settings_saved: 'Settings saved.',
    moved: { one: 'The thread {ident} ({n} comment) answers to: {aliases}', other: 'The thread {ident} ({n} comments) answers to: {aliases}' },
    thread_moved: 'Thread moved.',
    import_progress: '{name}: {done} of {total} comments written',
    import_reading: { one: '{name}: reading {n} post', other: '{name}: reading {n} posts' },
    import_done: '{name}: done.',
    import_interrupted: '{name}: interrupted (the server running it stopped). Upload the file again: what was imported is not imported twice.',
    import_failed: '{name}: failed. {error}',
    import_done_toast: 'Import done.',
    fmt_disqus: 'Disqus (XML export)',
    fmt_wordpress: 'WordPress (WXR export)',
    fmt_isso: 'Isso (its SQLite database)',
    fmt_remark42: 'Remark42 (backup file)',
    import_limit: 'At most {size}.',
    import_choose: 'Choose the export file first.',
    import_too_big: '{name} is {size}: over the limit of {max}.',
    import_uploading: 'Uploading {name} ({size})…',
    system: 'system',
    role_staff: 'staff, moderator',
    role_moderator: 'moderator',
    remove_mod_label: 'Remove {name} as moderator',
    mod_removed: '{name} no longer moderates {forum}.',
    remove: 'Remove',
    mod_added: '{name} now moderates {forum}.',
    sw_set_toast: 'Switch {name} set {value}.',
    sw_set_toast_forum: 'Switch {name} set {value} for {forum}.',
    sw_all_forums: 'All forums (global)',
    sw_global: 'global',
    sw_default: 'default',
    sw_turn_off_label: 'Turn {name} off everywhere',
    sw_turn_off: 'Turn off',
    sw_turn_on: 'Turn on',
    sw_percent_readers: '{n}% of readers',
    sw_staff_sel: 'staff',
    sw_rest: '{selectors} (the rest: {value})',
    sw_everyone: 'everyone',
    sw_forum_scope: 'forum {forum}',
    sw_flip_label: 'Flip {name} {scope}',
    sw_flip: 'Flip',
    sw_reset_label: 'Reset {name} {scope}',
    sw_reset_toast: 'Switch {name} reset ({scope}).',
    sw_reset: 'Reset',
    unit_kib: '{n} KiB',
    unit_mib: '{n} MiB',
  };

  const LANGS = ['de', 'fr', 'es', 'pt', 'ja', 'zh', 'ar'];
  const RTL = ['ar'];
  const I18N_V = /*CONFAB_I18N*/'';
  let S = STRINGS, LANG = 'en', plurals, nf, dtf;

  /** The first tag with a catalog (pt-BR is pt, zh-Hans is zh), else English. */
  function pickLang(tags) {
    for (const tag of [].concat(tags || [])) {
      const p = String(tag).toLowerCase().split(/[-_]/)[0];
      if (p !== 'en' && !LANGS.includes(p)) continue;
      try { return Intl.getCanonicalLocales(String(tag).replace(/_/g, '-'))[0]; } catch (e) { return p; }
    }
    return 'en';
  }
  const fill = (s, vars) => (vars ? s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] != null ? vars[k] : m)) : s);
  /** A string by key, its {name} placeholders filled; English where the catalog lacks it. */
  function tx(key, vars) {
    const s = S[key] != null ? S[key] : STRINGS[key];
    return s == null ? key : fill(String(s), vars);
  }
  /** A plural string for n ({n} is n as the language writes numbers). */
  function txn(key, n, vars) {
    const forms = S[key] || STRINGS[key];
    if (!plurals) { try { plurals = new Intl.PluralRules(LANG); } catch (e) { plurals = new Intl.PluralRules('en'); } }
    return fill(forms[plurals.select(n)] || forms.other, Object.assign({ n: fmtNum(n) }, vars));
  }
  function fmtNum(n, digits) {
    if (digits != null) return new Intl.NumberFormat(LANG, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
    if (!nf) { try { nf = new Intl.NumberFormat(LANG); } catch (e) { nf = new Intl.NumberFormat('en'); } }
    return nf.format(n);
  }
  /** Text with {0}, {1}... taken by the given nodes (an element's own controls, a link); a
   * node the text does not place goes at the end, so no control is ever lost. */
  function withNodes(text, nodes) {
    const used = new Set();
    const parts = text.split(/\{(\d+)\}/).map((part, i) => {
      if (!(i % 2)) return part;
      const n = nodes[Number(part)];
      if (n) used.add(n);
      return n || '';
    }).filter((x) => x !== '');
    return parts.concat(nodes.filter((n) => !used.has(n)));
  }
  /** Fills the page's data-i18n elements and attributes from the strings. */
  function localize(root) {
    root.querySelectorAll('[data-i18n]').forEach((el) => {
      if (!el.i18nKids) el.i18nKids = Array.from(el.children);
      el.replaceChildren(...withNodes(tx(el.getAttribute('data-i18n')), el.i18nKids));
    });
    for (const a of ['placeholder', 'aria-label', 'title']) {
      root.querySelectorAll('[data-i18n-' + a + ']').forEach((el) => el.setAttribute(a, tx(el.getAttribute('data-i18n-' + a))));
    }
  }
  /** The language (?lang=, else the browser's), its catalog if not English, then the page. */
  async function loadStrings() {
    LANG = pickLang(new URLSearchParams(location.search).get('lang') || navigator.languages || navigator.language);
    const p = LANG.split('-')[0].toLowerCase();
    if (LANGS.includes(p)) {
      try {
        const r = await fetch('/i18n/admin/' + p + '.json?v=' + I18N_V, { credentials: 'omit' });
        if (r.ok) S = Object.assign({}, STRINGS, await r.json());
      } catch (e) { /* English it is */ }
    }
    document.documentElement.lang = LANG;
    document.documentElement.dir = RTL.includes(p) ? 'rtl' : 'ltr';
    localize(document);
  }
  const $ = (s) => document.querySelector(s);
  const $$ = (s) => Array.from(document.querySelectorAll(s));
  const on = (el, ev, fn) => el.addEventListener(ev, fn);

  function h(tag, attrs, ...kids) {
    const el = tag.startsWith('svg:') ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
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

  class ApiError extends Error { constructor(code, msg, status) { super(msg || code); this.code = code; this.status = status; } }

  async function api(method, path, body) {
    let res;
    try {
      res = await fetch('/api/v1' + path, {
        method, credentials: 'same-origin',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) { throw new ApiError('network', tx('err_network'), 0); }
    let data = null;
    if (res.status !== 204) { try { data = await res.json(); } catch (e) { data = null; } }
    if (!res.ok) {
      const er = (data && data.error) || {};
      if (res.status === 401 && path !== '/sessions') showLogin();
      throw new ApiError(er.code || 'error', er.message || res.statusText, res.status);
    }
    return data;
  }

  let toastTimer;
  function toast(msg, isError) {
    const el = $('#toast');
    el.textContent = msg;
    el.classList.toggle('error', !!isError);
    el.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove('show'), isError ? 6000 : 3000);
  }

  /** A day (YYYY-MM-DD) as the language writes it: short (day and month) or with the year. */
  const day = (d, style) => {
    try {
      const o = style ? { dateStyle: style, timeZone: 'UTC' } : { month: 'numeric', day: 'numeric', timeZone: 'UTC' };
      return new Intl.DateTimeFormat(LANG, o).format(new Date(d + 'T00:00:00Z'));
    } catch (e) { return d; }
  };
  const when = (v) => {
    if (!dtf) { try { dtf = new Intl.DateTimeFormat(LANG, { dateStyle: 'medium', timeStyle: 'short' }); } catch (e) { dtf = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' }); } }
    return dtf.format(new Date(v));
  };

  // Comment bodies: sanitized by the server; parsed inert, with a second pass for anything active.
  function bodyFragment(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = html || '';
    const f = tpl.content;
    f.querySelectorAll('script,style,iframe,frame,object,embed,link,meta,base,form,input,button,textarea,select,svg,math,img,video,audio,template').forEach((e) => e.remove());
    f.querySelectorAll('*').forEach((el) => {
      for (const a of Array.from(el.attributes)) {
        const n = a.name.toLowerCase();
        if (n.startsWith('on') || n === 'style' || n === 'srcdoc' ||
            ((n === 'href' || n === 'src' || n === 'action' || n.endsWith(':href')) && !/^(https?:|mailto:)/i.test(a.value.trim()))) el.removeAttribute(a.name);
      }
      if (el.tagName === 'A') { el.target = '_blank'; el.rel = 'nofollow ugc noopener noreferrer'; }
    });
    return f;
  }

  // ---------------------------------------------------------------------------------------
  // State and navigation (#forum=demo&tab=queue&queue=pending&q=...).
  const state = { me: null, forums: [], forum: null, tab: 'queue', queue: 'pending', q: '', before: null, logBefore: null, items: new Map(), gen: 0, logGen: 0 };

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.get('tab')) state.tab = p.get('tab');
    if (p.get('queue')) state.queue = p.get('queue');
    state.q = p.get('q') || '';
    return p.get('forum');
  }
  function writeHash() {
    const p = new URLSearchParams({ forum: state.forum || '', tab: state.tab, queue: state.queue });
    if (state.q) p.set('q', state.q);
    history.replaceState(null, '', '#' + p);
  }

  function showLogin() {
    $('#dash-view').hidden = true;
    $('#login-view').hidden = false;
    $('#login-name').focus();
  }

  async function boot() {
    const want = readHash();
    try {
      state.me = await api('GET', '/me');
    } catch (e) {
      if (e.status === 401) { showLogin(); return; }
      toast(e.message, true); return;
    }
    const { forums } = await api('GET', '/forums').then((list) => ({ forums: list }), () => ({ forums: [] }));
    state.forums = Array.isArray(forums) ? forums : (forums.forums || []);
    $('#login-view').hidden = true;
    $('#dash-view').hidden = false;
    $('#who').textContent = tx('signed_in_as', { name: state.me.display_name });
    // Staff also manage moderators and feature switches.
    TABS = state.me.is_staff ? BASE_TABS.concat(STAFF_TABS) : BASE_TABS;
    for (const t of STAFF_TABS) $('#tab-' + t).hidden = !state.me.is_staff;
    $('#reader-staff').hidden = !state.me.is_staff;
    const sel = $('#forum');
    sel.replaceChildren(...state.forums.map((f) => h('option', { value: f.name }, f.settings.title + ' (' + f.name + ')')));
    if (!state.forums.length) {
      $('#main').replaceChildren(h('section', { class: 'card' }, h('h2', {}, tx('no_forums')),
        h('p', {}, tx('no_forums_note'))));
      return;
    }
    state.forum = state.forums.some((f) => f.name === want) ? want : state.forums[0].name;
    sel.value = state.forum;
    $('#search').value = state.q;
    selectTab(state.tab, false);
    loadForum();
  }

  function loadForum() {
    writeHash();
    loadQueue();
    if (state.tab === 'bans') loadBans();
    if (state.tab === 'settings') { loadSettings(); loadImports(); }
    if (state.tab === 'log') loadLog();
    if (state.tab === 'moderators') loadModerators();
    if (state.tab === 'switches') loadSwitches();
  }

  // ---------------------------------------------------------------------------------------
  // Tabs.
  const BASE_TABS = ['queue', 'bans', 'settings', 'log'];
  const STAFF_TABS = ['moderators', 'switches'];
  let TABS = BASE_TABS;
  function selectTab(tab, focus) {
    if (!TABS.includes(tab)) tab = 'queue';
    state.tab = tab;
    for (const t of BASE_TABS.concat(STAFF_TABS)) {
      const b = $('#tab-' + t);
      b.setAttribute('aria-selected', String(t === tab));
      b.tabIndex = t === tab ? 0 : -1;
      $('#panel-' + t).hidden = t !== tab;
    }
    if (focus) $('#tab-' + tab).focus();
    writeHash();
  }
  for (const t of BASE_TABS.concat(STAFF_TABS)) {
    on($('#tab-' + t), 'click', () => {
      selectTab(t);
      if (t === 'bans') loadBans();
      if (t === 'settings') { loadSettings(); loadImports(); }
      if (t === 'log') loadLog();
      if (t === 'queue') loadQueue();
      if (t === 'moderators') loadModerators();
      if (t === 'switches') loadSwitches();
    });
  }
  on($('.tabs'), 'keydown', (e) => {
    const i = TABS.indexOf(state.tab);
    let j = null;
    if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
    if (e.key === 'ArrowLeft') j = (i + TABS.length - 1) % TABS.length;
    if (j == null) return;
    e.preventDefault();
    $('#tab-' + TABS[j]).click();
    $('#tab-' + TABS[j]).focus();
  });

  // ---------------------------------------------------------------------------------------
  // Stats: a bar chart of comments per day (inline SVG, with a text summary for screen readers).
  async function loadStats() {
    let daily = [];
    try { daily = (await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/stats?days=30')).daily; } catch (e) { return; }
    const total = daily.reduce((a, d) => a + d.count, 0);
    $('#stats-total').textContent = txn('stats_total', total);
    const max = Math.max(1, ...daily.map((d) => d.count));
    const W = 720, H = 120, pad = 22, bw = (W - pad) / Math.max(1, daily.length);
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H + 18}`, role: 'img', 'aria-label': tx('chart_label', { days: fmtNum(daily.length), total: fmtNum(total), max: fmtNum(max) }) });
    for (const frac of max > 1 ? [0, 0.5, 1] : [0, 1]) {
      const y = H - frac * (H - 8);
      svg.append(h('svg:line', { x1: pad, x2: W, y1: y, y2: y, class: 'grid' }));
      svg.append(h('svg:text', { x: pad - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmtNum(Math.round(frac * max))));
    }
    daily.forEach((d, i) => {
      const bh = d.count ? Math.max(2, (d.count / max) * (H - 8)) : 0;
      const x = pad + i * bw + 1;
      const bar = h('svg:rect', { x, y: H - bh, width: Math.max(1, bw - 2), height: bh, rx: 2, class: 'bar' });
      bar.append(h('svg:title', {}, `${day(d.day, 'medium')}: ${fmtNum(d.count)}`));
      svg.append(bar);
      if (i % 7 === 0 || (i === daily.length - 1 && i % 7 > 3)) svg.append(h('svg:text', { x: x + bw / 2, y: H + 14, 'text-anchor': 'middle', class: 'axis' }, day(d.day)));
    });
    $('#chart').replaceChildren(svg);
  }

  // ---------------------------------------------------------------------------------------
  // Queues.
  const ACTIONS = {
    pending: ['approve', 'spam', 'delete'],
    approved: ['spam', 'delete'],
    spam: ['approve', 'delete'],
    deleted: ['restore'],
  };
  const LABEL = (a) => tx(a === 'ban' ? 'ban_author' : 'act_' + a);
  const status = (s) => (STRINGS['status_' + s] ? tx('status_' + s) : s);

  async function loadQueue(more) {
    const gen = ++state.gen; // answers to superseded requests are dropped
    if (!more) { state.before = null; state.items.clear(); $('#items').replaceChildren(); loadStats(); }
    $$('.queue').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.queue === state.queue)));
    $('#search-clear').hidden = !state.q;
    const p = new URLSearchParams({ queue: state.queue, limit: '50' });
    if (state.q) p.set('q', state.q);
    if (more && state.before) p.set('before', state.before);
    let r;
    try { r = await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/comments?' + p); } catch (e) { toast(e.message, true); return; }
    if (gen !== state.gen) return;
    const list = $('#items');
    for (const c of r.comments) { state.items.set(c.id, c); list.append(renderItem(c)); }
    state.before = r.next_before;
    showCounts(r.counts);
    $('#older').hidden = !r.next_before;
    $('#items-empty').hidden = state.items.size > 0;
    updateBulk();
  }

  function chip(label, value, title) {
    return h('button', { type: 'button', class: 'chip', title: title || tx('search_for', { value }), onclick: () => search(value) }, label);
  }

  function renderItem(c) {
    const li = h('li', { class: 'item status-' + c.status, 'data-id': c.id });
    const box = h('input', { type: 'checkbox', class: 'pick', 'aria-label': tx('select_by', { name: c.author.name }), onchange: updateBulk });
    const meta = h('div', { class: 'meta' },
      h('strong', { class: 'author' }, c.author.name),
      c.author.account_id ? h('span', { class: 'muted' }, tx('account_id', { id: c.author.account_id })) : h('span', { class: 'muted' }, tx('guest')),
      c.author_email ? chip(c.author_email, c.author_email) : null,
      chip(tx('ip_chip', { hash: c.ip_hash }), c.ip_hash, tx('search_ip')),
      h('time', { datetime: c.created_at, title: c.created_at }, when(c.created_at)),
      h('span', { class: 'badge status' }, status(c.status)),
      c.flag_count ? h('span', { class: 'badge flags' }, txn('flags', c.flag_count)) : null,
      c.held_reason ? h('span', { class: 'badge held-reason' }, c.held_reason) : null,
      c.parent_id ? h('span', { class: 'muted' }, tx('is_reply')) : null);
    const body = h('div', { class: 'body' }, bodyFragment(c.body_html));
    const pics = (c.images || []).length ? h('div', { class: 'pics' }, c.images.map((im) => h('figure', { class: 'pic' },
      h('a', { href: im.url, target: '_blank', rel: 'noopener', title: tx('pic_open') },
        h('img', { src: im.url, width: im.width, height: im.height, loading: 'lazy', alt: tx('pic_alt', { name: c.author.name }) })),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'remove-image', onclick: () => removeImage(c, im) }, tx('pic_remove'))))) : null;
    const ctx = itemContext(c);
    const acts = h('div', { class: 'acts' });
    for (const a of (ACTIONS[c.status] || [])) {
      acts.append(h('button', { type: 'button', class: 'btn small' + (a === 'approve' || a === 'restore' ? ' primary' : ''), 'data-action': a, onclick: () => moderate([c.id], a) }, LABEL(a)));
    }
    acts.append(h('button', { type: 'button', class: 'btn small danger', 'data-action': 'ban', onclick: () => openBanDialog([c.id]) }, LABEL('ban')));
    acts.append(h('button', { type: 'button', class: 'btn small danger', 'data-action': 'shadow-ban', title: tx('shadow_title'), onclick: () => ban([c.id], true) }, tx('shadow_ban_author')));
    li.append(h('div', { class: 'pick-col' }, box), h('div', { class: 'main' }, meta, ctx, body, pics, acts));
    return li;
  }

  function selected() { return $$('#items .pick:checked').map((b) => b.closest('li').dataset.id); }

  function updateBulk() {
    const n = selected().length;
    const all = $$('#items .pick');
    $('#selected-count').textContent = n ? txn('selected', n) : tx('select_all');
    $('#select-all').checked = n > 0 && n === all.length;
    $('#select-all').indeterminate = n > 0 && n < all.length;
    $$('[data-bulk]').forEach((b) => { b.disabled = n === 0; });
  }
  on($('#select-all'), 'change', (e) => { $$('#items .pick').forEach((b) => { b.checked = e.target.checked; }); updateBulk(); });
  $$('[data-bulk]').forEach((b) => on(b, 'click', () => {
    const ids = selected();
    if (!ids.length) return;
    if (b.dataset.bulk === 'ban') openBanDialog(ids); else moderate(ids, b.dataset.bulk);
  }));

  /** Which queue a comment of this status (and flags) belongs in. */
  function fits(c) {
    if (state.queue === 'all') return true;
    if (state.queue === 'flagged') return c.status !== 'deleted' && c.flag_count > 0;
    return c.status === state.queue;
  }

  async function moderate(ids, action) {
    try {
      const r = await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/moderate', { ids, action });
      const status = action === 'spam' ? 'spam' : action === 'delete' ? 'deleted' : 'approved';
      for (const id of ids) {
        const c = state.items.get(id);
        const li = $(`#items li[data-id="${id}"]`);
        if (!c || !li) continue;
        c.status = status;
        if (action === 'approve' || action === 'restore') c.flag_count = state.queue === 'flagged' ? 0 : c.flag_count;
        if (fits(c)) li.replaceWith(renderItem(c)); else { li.remove(); state.items.delete(id); }
      }
      $('#items-empty').hidden = state.items.size > 0;
      updateBulk();
      toast(txn('done_' + action, r.changed));
      loadStats();
      refreshCounts();
    } catch (e) { toast(e.message, true); }
  }

  /** Removes one picture from a comment (the comment stays). */
  async function removeImage(c, im) {
    try {
      await api('DELETE', '/forums/' + encodeURIComponent(state.forum) + '/comments/' + c.id + '/images/' + im.id);
      c.images = c.images.filter((x) => x.id !== im.id);
      const li = $(`#items li[data-id="${c.id}"]`);
      if (li) li.replaceWith(renderItem(c));
      toast(tx('pic_removed'));
    } catch (e) { toast(e.message, true); }
  }

  async function ban(ids, shadow = false) {
    let n = 0;
    for (const id of ids) {
      try { await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/bans', { comment_id: id, reason: shadow ? 'shadow-banned from the dashboard' : 'banned from the dashboard', shadow }); n++; } catch (e) { toast(e.message, true); }
    }
    if (n) toast(txn(shadow ? 'authors_shadow_banned' : 'authors_banned', n));
    if (state.tab === 'bans') loadBans();
  }

  function search(q) {
    state.q = q;
    $('#search').value = q;
    if (state.tab !== 'queue') selectTab('queue');
    if (q) state.queue = 'all'; // a search looks through every queue; pick one to narrow it
    writeHash();
    loadQueue();
  }
  on($('#search-form'), 'submit', (e) => { e.preventDefault(); search($('#search').value.trim()); });
  on($('#search-clear'), 'click', () => search(''));
  $$('.queue').forEach((b) => on(b, 'click', () => { state.queue = b.dataset.queue; writeHash(); loadQueue(); }));
  on($('#older'), 'click', () => loadQueue(true));

  // ---------------------------------------------------------------------------------------
  // Bans.
  async function loadBans() {
    let r;
    try { r = await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/bans'); } catch (e) { toast(e.message, true); return; }
    $('#bans').replaceChildren(...r.bans.map(banRow));
    $('#bans-empty').hidden = r.bans.length > 0;
  }
  on($('#ban-form'), 'submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const v = Object.fromEntries(new FormData(f));
    try {
      await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/bans', { kind: v.kind, value: v.value, reason: v.reason || null, shadow: !!v.shadow });
      f.reset();
      toast(tx('banned_toast'));
      loadBans();
    } catch (ex) { toast(ex.message, true); }
  });

  // ---------------------------------------------------------------------------------------
  // A reader's own data, on their request: a moderator exports or erases what an account or a
  // guest's address left on this forum; staff export or delete a whole account.
  function saveJson(data, name) {
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
  on($('#reader-form'), 'submit', async (e) => {
    e.preventDefault();
    const action = (e.submitter && e.submitter.value) || 'download';
    const v = Object.fromEntries(new FormData(e.target));
    const who = v.who.trim();
    const target = who.includes('@') ? { email: who } : { account: who };
    const forum = encodeURIComponent(state.forum);
    const staffPath = '/staff/readers/' + encodeURIComponent(who);
    try {
      if (action === 'download' || action === 'staff-download') {
        const data = action === 'download'
          ? await api('GET', `/forums/${forum}/readers/data?` + new URLSearchParams(target))
          : await api('GET', staffPath + '/data');
        saveJson(data, 'confab-data.json');
        toast(txn('exported', data.comments.length));
        return;
      }
      const keep = v.comments === 'keep' ? 'keep' : 'remove';
      const what = action === 'delete' ? tx('confirm_delete_account_' + keep, { who })
        : tx('confirm_erase_' + keep, { who, forum: state.forum });
      if (!window.confirm(what + ' ' + tx('cannot_undo'))) return;
      const r = action === 'delete'
        ? await api('POST', staffPath + '/delete', { comments: v.comments })
        : await api('POST', `/forums/${forum}/readers/erase`, { ...target, comments: v.comments });
      toast(r.state === 'done'
        ? txn('erased', r.comments) + (r.account_deleted ? ' ' + tx('account_is_deleted') : '')
        : tx('erasing'));
      e.target.reset();
    } catch (ex) { toast(ex.message, true); }
  });
  // Moderation with context: queue sizes on the tabs, each item's thread, flags and author.
  function showCounts(counts) {
    if (!counts) return;
    for (const q of ['pending', 'flagged', 'spam']) {
      const el = document.querySelector(`.qcount[data-count="${q}"]`);
      const n = counts[q] || 0;
      el.textContent = n ? (n >= counts.cap ? fmtNum(counts.cap) + '+' : fmtNum(n)) : '';
    }
  }
  async function refreshCounts() {
    try { showCounts((await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/comments?queue=pending&limit=1')).counts); } catch (e) { /* counts are a hint */ }
  }
  function itemContext(c) {
    const t = c.thread || {};
    const title = t.title || t.ident || tx('a_thread');
    const parts = [h('span', { class: 'thread' }, withNodes(tx('on_thread'), [
      c.link ? h('a', { href: c.link, target: '_blank', rel: 'noopener', class: 'in-place', title: tx('see_on_site') }, title) : h('strong', {}, title)]))];
    if (c.flag_reasons && c.flag_reasons.length) {
      const reasons = c.flag_reasons.map((f) => (f.reason || tx('no_reason')) + (f.count > 1 ? ' ×' + fmtNum(f.count) : ''));
      let list;
      try { list = new Intl.ListFormat(LANG, { type: 'unit' }).format(reasons); } catch (e) { list = reasons.join(', '); }
      parts.push(h('span', { class: 'flag-reasons' }, tx('flagged_reasons', { reasons: list })));
    }
    const hi = c.author_history;
    if (hi) {
      parts.push(h('span', { class: 'history', title: tx('author_history_title') },
        tx('author_history', { approved: fmtNum(hi.approved), pending: fmtNum(hi.pending), spam: fmtNum(hi.spam), deleted: fmtNum(hi.deleted), since: when(hi.first_seen) })));
    }
    return h('div', { class: 'context' }, parts);
  }

  // ---------------------------------------------------------------------------------------
  // The ban dialog: what (only the choices every chosen author has), for how long, why.
  const BAN_LABEL = (k) => tx('ban_kind_' + String(k).replace('+', '_'));
  function banChoices(c) {
    if (c.author.account_id) return ['account', 'ip'];
    return c.author_email ? ['email', 'ip', 'ip+email'] : ['ip'];
  }
  let banIds = [];
  function openBanDialog(ids) {
    const items = ids.map((id) => state.items.get(id)).filter(Boolean);
    if (!items.length) return;
    banIds = items.map((c) => c.id);
    let choices = banChoices(items[0]);
    for (const c of items.slice(1)) choices = choices.filter((k) => banChoices(c).includes(k));
    $('#ban-dialog-who').textContent = items.length === 1 ? items[0].author.name : txn('n_authors', items.length);
    $('#ban-what').replaceChildren(...choices.map((k, i) => h('label', { class: 'check' },
      h('input', { type: 'radio', name: 'kind', value: k, checked: i === 0, onchange: banDefaults }), ' ' + BAN_LABEL(k))));
    $('#ban-reason').value = '';
    $('#ban-dialog-msg').textContent = '';
    banDefaults();
    $('#ban-dialog').showModal();
  }
  // IP bans default to a day; an account or e-mail, to a week.
  function banDefaults() {
    const k = ($('#ban-what input:checked') || {}).value || 'ip';
    const ip = k.startsWith('ip');
    document.querySelector(`#ban-dialog input[name="duration"][value="${ip ? 'day' : 'week'}"]`).checked = true;
    $('#ban-ip-note').hidden = !ip;
  }
  on($('#ban-cancel'), 'click', () => $('#ban-dialog').close());
  on($('#ban-dialog-form'), 'submit', async (e) => {
    e.preventDefault();
    const kind = ($('#ban-what input:checked') || {}).value;
    const duration = ($('#ban-dialog input[name="duration"]:checked') || {}).value;
    const reason = $('#ban-reason').value.trim() || null;
    let n = 0;
    for (const id of banIds) {
      try {
        await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/bans', { comment_id: id, kind, duration, reason });
        n++;
      } catch (ex) { $('#ban-dialog-msg').textContent = ex.message; return; }
    }
    $('#ban-dialog').close();
    const until = tx(duration === 'forever' ? 'ban_for_good' : duration === 'day' ? 'ban_for_day' : 'ban_for_week');
    toast(txn('authors_banned_for', n, { until, kind: BAN_LABEL(kind) }));
    if (state.tab === 'bans') loadBans();
  });
  function banRow(b) {
    const by = b.created_by ? (state.me && b.created_by.id === state.me.id ? tx('you') : (b.created_by.name || tx('account_id', { id: b.created_by.id }))) : '';
    const until = b.expires_at ? when(b.expires_at) : tx('ban_for_good');
    const kind = STRINGS['bans_kind_' + b.kind] ? tx('bans_kind_' + b.kind) : b.kind;
    return h('tr', { class: b.active ? '' : 'lapsed-row' },
      h('td', {}, b.shadow ? tx('shadow_kind', { kind }) : kind),
      h('td', {}, b.shown),
      h('td', {}, b.reason || ''),
      h('td', {}, by),
      h('td', {}, when(b.created_at)),
      h('td', {}, b.active ? until : h('span', { class: 'lapsed', title: tx('lapsed_title') }, until)),
      h('td', {}, h('button', { type: 'button', class: 'btn small', 'aria-label': tx('lift_label', { value: b.shown }), onclick: async () => {
        try { await api('DELETE', '/forums/' + encodeURIComponent(state.forum) + '/bans/' + b.id); toast(tx('ban_lifted')); loadBans(); } catch (e) { toast(e.message, true); }
      } }, tx('lift'))));
  }

  // ---------------------------------------------------------------------------------------
  // Settings.
  async function loadSettings() {
    let f;
    try { f = await api('GET', '/forums/' + encodeURIComponent(state.forum)); } catch (e) { toast(e.message, true); return; }
    const s = f.settings;
    $('#s-title').value = s.title;
    $('#s-origins').value = s.allowed_origins.join('\n');
    $('#s-moderation').value = s.moderation;
    $('#s-guests').checked = s.guest_posting;
    $('#s-gravatar').checked = s.gravatar;
    $('#s-images').checked = !!s.images;
    $('#s-window').value = String(Math.round(s.edit_window_secs / 60));
    showSso(f);
    $('#settings-msg').textContent = '';
    showRules(s);
  }
  // Moderation rules: a separate form, sending only its own settings.
  function showRules(s) {
    $('#r-block').value = s.words.block.join('\n');
    $('#r-hold').value = s.words.hold.join('\n');
    $('#r-links').value = s.max_links == null ? '' : String(s.max_links);
    $('#r-trust').value = s.trust.hold_first ? String(s.trust.hold_first) : '';
    $('#r-flags').value = s.flags_to_hold == null ? '' : String(s.flags_to_hold);
    $('#r-dup-count').value = s.duplicates.count ? String(s.duplicates.count) : '';
    $('#r-dup-minutes').value = s.duplicates.count ? String(s.duplicates.minutes) : '';
    $('#r-pow').checked = s.challenge.enabled;
    $('#r-pow-difficulty').value = String(s.challenge.difficulty);
    showSpam(s.spam);
    $('#rules-msg').textContent = '';
  }
  // The outside spam check: the key comes back masked, and sent back as shown it is kept.
  function showSpam(spam) {
    $('#r-spam-key').value = spam.akismet_key || '';
    $('#r-spam-when').value = spam.when_unavailable;
  }
  function spamPatch() {
    return { akismet_key: $('#r-spam-key').value.trim(), when_unavailable: $('#r-spam-when').value };
  }
  const lines = (el) => el.value.split('\n').map((x) => x.trim()).filter(Boolean);
  const num = (el) => (el.value.trim() === '' ? null : Number(el.value));
  on($('#rules-form'), 'submit', async (e) => {
    e.preventDefault();
    const count = num($('#r-dup-count')) || 0;
    const patch = {
      words: { block: lines($('#r-block')), hold: lines($('#r-hold')) },
      max_links: num($('#r-links')),
      trust: { hold_first: num($('#r-trust')) || 0 },
      flags_to_hold: num($('#r-flags')),
      duplicates: { count, minutes: count ? (num($('#r-dup-minutes')) || 0) : 0 },
      // Left empty, the difficulty is the server's default.
      challenge: num($('#r-pow-difficulty')) == null
        ? { enabled: $('#r-pow').checked }
        : { enabled: $('#r-pow').checked, difficulty: num($('#r-pow-difficulty')) },
      spam: spamPatch(),
    };
    const msg = $('#rules-msg');
    try {
      const f = await api('PATCH', '/forums/' + encodeURIComponent(state.forum), patch);
      showRules(f.settings);
      msg.classList.remove('error');
      msg.textContent = tx('saved');
      toast(tx('rules_saved'));
    } catch (ex) {
      msg.classList.add('error');
      msg.textContent = ex.message;
    }
  });
  // The SSO secret is write-only: the API says only whether one is set.
  function showSso(f) {
    $('#s-sso').value = '';
    $('#s-sso-clear').checked = false;
    $('#s-sso-clear').disabled = !f.sso;
    $('#s-sso-state').textContent = tx(f.sso ? 's_sso_set' : 's_sso_unset');
  }
  on($('#settings-form'), 'submit', async (e) => {
    e.preventDefault();
    const patch = {
      title: $('#s-title').value.trim(),
      allowed_origins: $('#s-origins').value.split('\n').map((x) => x.trim()).filter(Boolean),
      moderation: $('#s-moderation').value,
      guest_posting: $('#s-guests').checked,
      gravatar: $('#s-gravatar').checked,
      images: $('#s-images').checked,
      edit_window_secs: Math.round(Number($('#s-window').value) * 60),
    };
    if ($('#s-sso-clear').checked) patch.sso_secret = '';
    else if ($('#s-sso').value) patch.sso_secret = $('#s-sso').value;
    const msg = $('#settings-msg');
    try {
      const f = await api('PATCH', '/forums/' + encodeURIComponent(state.forum), patch);
      msg.classList.remove('error');
      msg.textContent = tx('saved');
      showSso(f);
      const i = state.forums.findIndex((x) => x.name === f.name);
      if (i >= 0) state.forums[i] = f;
      const opt = $(`#forum option[value="${CSS.escape(f.name)}"]`);
      if (opt) opt.textContent = f.settings.title + ' (' + f.name + ')';
      toast(tx('settings_saved'));
    } catch (ex) {
      msg.classList.add('error');
      msg.textContent = ex.message;
    }
  });

  // A moved page: its thread answers to the new address too.
  on($('#move-form'), 'submit', async (e) => {
    e.preventDefault();
    const msg = $('#move-msg');
    const body = { from: $('#m-from').value.trim(), to: $('#m-to').value.trim() };
    try {
      const r = await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/thread-moves', body);
      msg.classList.remove('error');
      const n = r.thread.comment_count;
      msg.textContent = txn('moved', n, { ident: r.thread.ident, aliases: [r.thread.ident].concat(r.aliases).join(', ') });
      $('#m-from').value = '';
      $('#m-to').value = '';
      toast(tx('thread_moved'));
    } catch (ex) {
      msg.classList.add('error');
      msg.textContent = ex.message;
    }
  });

  // ---------------------------------------------------------------------------------------
  // Import comments (staff): the file is the request's body; the import runs in the background
  // on the server that received it, and its record is polled every second while it runs.
  const imp = { gen: 0, timer: null, max: 0 };
  const mib = (n) => (n < 1048576 ? tx('unit_kib', { n: fmtNum(n / 1024, 1) }) : tx('unit_mib', { n: fmtNum(n / 1048576, 1) }));

  function showImport(r) {
    const box = $('#i-progress-box'), bar = $('#i-progress'), status = $('#i-status'), summary = $('#i-summary');
    box.hidden = false;
    status.classList.remove('error');
    summary.hidden = true;
    const name = r.file_name + ' (' + mib(r.bytes) + ')';
    if (r.state === 'running') {
      if (r.comments_total > 0) {
        bar.max = r.comments_total;
        bar.value = r.comments_written;
        status.textContent = tx('import_progress', { name, done: fmtNum(r.comments_written), total: fmtNum(r.comments_total) });
      } else {
        bar.removeAttribute('value');
        status.textContent = txn('import_reading', r.posts_read, { name });
      }
    } else if (r.state === 'done') {
      bar.max = 1; bar.value = 1;
      status.textContent = tx('import_done', { name });
      summary.textContent = r.summary;
      summary.hidden = false;
    } else {
      bar.max = 1; bar.value = 0;
      status.classList.add('error');
      status.textContent = r.state === 'interrupted'
        ? tx('import_interrupted', { name })
        : tx('import_failed', { name, error: r.error });
    }
  }

  function pollImport(id) {
    clearTimeout(imp.timer);
    const gen = imp.gen, forum = state.forum;
    imp.timer = setTimeout(async () => {
      let r;
      try { r = await api('GET', '/forums/' + encodeURIComponent(forum) + '/imports/' + encodeURIComponent(id)); } catch (e) {
        if (gen === imp.gen) { toast(e.message, true); pollImport(id); }
        return;
      }
      if (gen !== imp.gen) return;
      showImport(r);
      if (r.state === 'running') pollImport(id);
      else { $('#i-upload').disabled = false; if (r.state === 'done') { toast(tx('import_done_toast')); loadStats(); } }
    }, 1000);
  }

  async function loadImports() {
    const form = $('#import-form');
    form.hidden = !(state.me && state.me.is_staff);
    if (form.hidden) return;
    const gen = ++imp.gen;
    clearTimeout(imp.timer);
    $('#i-progress-box').hidden = true;
    $('#i-summary').hidden = true;
    $('#i-upload').disabled = false;
    let r;
    try { r = await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/imports'); } catch (e) { toast(e.message, true); return; }
    if (gen !== imp.gen) return;
    const sel = $('#i-format');
    const keep = sel.value;
    sel.replaceChildren(...r.formats.map((f) => h('option', { value: f }, STRINGS['fmt_' + f] ? tx('fmt_' + f) : f)));
    if (keep && r.formats.includes(keep)) sel.value = keep;
    imp.max = r.max_upload_bytes;
    $('#i-limit').textContent = tx('import_limit', { size: mib(r.max_upload_bytes) });
    const latest = r.imports[0];
    if (latest) {
      showImport(latest);
      if (latest.state === 'running') { $('#i-upload').disabled = true; pollImport(latest.id); }
    }
  }

  on($('#import-form'), 'submit', async (e) => {
    e.preventDefault();
    const file = $('#i-file').files[0];
    const status = $('#i-status');
    const fail = (msg) => { $('#i-progress-box').hidden = false; $('#i-summary').hidden = true; status.classList.add('error'); status.textContent = msg; };
    if (!file) { fail(tx('import_choose')); return; }
    if (imp.max && file.size > imp.max) { fail(tx('import_too_big', { name: file.name, size: mib(file.size), max: mib(imp.max) })); return; }
    const gen = ++imp.gen;
    clearTimeout(imp.timer);
    $('#i-upload').disabled = true;
    $('#i-progress-box').hidden = false;
    $('#i-summary').hidden = true;
    $('#i-progress').removeAttribute('value');
    status.classList.remove('error');
    status.textContent = tx('import_uploading', { name: file.name, size: mib(file.size) });
    let res, data = null;
    try {
      res = await fetch('/api/v1/forums/' + encodeURIComponent(state.forum) + '/imports?format=' + encodeURIComponent($('#i-format').value), {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/octet-stream', 'X-File-Name': encodeURIComponent(file.name) },
        body: file,
      });
      try { data = await res.json(); } catch (ex) { data = null; }
    } catch (ex) { $('#i-upload').disabled = false; fail(tx('err_network')); return; }
    if (gen !== imp.gen) return;
    if (!res.ok) {
      $('#i-upload').disabled = false;
      if (res.status === 401) { showLogin(); return; }
      fail((data && data.error && data.error.message) || res.statusText);
      return;
    }
    $('#i-file').value = '';
    showImport(data);
    pollImport(data.id);
  });

  // ---------------------------------------------------------------------------------------
  // Log.
  async function loadLog(more) {
    const gen = ++state.logGen;
    if (!more) { state.logBefore = null; $('#log').replaceChildren(); }
    const p = new URLSearchParams({ limit: '50' });
    if (more && state.logBefore) p.set('before', state.logBefore);
    let r;
    try { r = await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/log?' + p); } catch (e) { toast(e.message, true); return; }
    if (gen !== state.logGen) return;
    $('#log').append(...r.entries.map((e) => h('tr', {},
      h('td', {}, when(e.created_at)),
      h('td', {}, e.actor ? (state.me && e.actor === state.me.id ? tx('you') : (e.actor_name || tx('account_id', { id: e.actor }))) : tx('system')),
      h('td', {}, h('span', { class: 'badge' }, e.action)),
      h('td', {}, e.thread_title ? (e.link ? h('a', { href: e.link, target: '_blank', rel: 'noopener' }, e.thread_title) : e.thread_title) : ''),
      h('td', {}, e.detail || ''))));
    state.logBefore = r.next_before;
    $('#log-older').hidden = !r.next_before;
    $('#log-empty').hidden = $('#log').children.length > 0;
  }
  on($('#log-older'), 'click', () => loadLog(true));

  // ---------------------------------------------------------------------------------------
  // Moderators of the forum (staff).
  async function loadModerators() {
    let list;
    const forum = encodeURIComponent(state.forum);
    try { list = await api('GET', '/forums/' + forum + '/moderators'); } catch (e) { toast(e.message, true); return; }
    $('#moderators').replaceChildren(...list.map((m) => h('tr', {},
      h('td', {}, h('code', {}, m.username)), h('td', {}, m.display_name), h('td', {}, tx(m.is_staff ? 'role_staff' : 'role_moderator')),
      h('td', {}, h('button', { type: 'button', class: 'btn small danger', 'aria-label': tx('remove_mod_label', { name: m.username }), onclick: async () => {
        try {
          await api('DELETE', '/forums/' + forum + '/moderators/' + encodeURIComponent(m.username));
          toast(tx('mod_removed', { name: m.username, forum: state.forum }));
          loadModerators();
        } catch (e) { toast(e.message, true); }
      } }, tx('remove'))))));
    $('#moderators-empty').hidden = list.length > 0;
  }
  on($('#mod-form'), 'submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const name = new FormData(f).get('username').trim();
    try {
      await api('PUT', '/forums/' + encodeURIComponent(state.forum) + '/moderators/' + encodeURIComponent(name));
      f.reset();
      toast(tx('mod_added', { name, forum: state.forum }));
      loadModerators();
    } catch (ex) { toast(ex.message, true); }
  });

  // ---------------------------------------------------------------------------------------
  // Feature switches (staff).
  async function setSwitch(name, body) {
    await api('PUT', '/switches/' + encodeURIComponent(name), body);
    toast(tx(body.forum ? 'sw_set_toast_forum' : 'sw_set_toast', { name, value: tx(body.on ? 'on' : 'off'), forum: body.forum }));
    loadSwitches();
  }
  async function loadSwitches() {
    let r;
    try { r = await api('GET', '/switches'); } catch (e) { toast(e.message, true); return; }
    const nameSel = $('#sw-name');
    const keep = nameSel.value;
    nameSel.replaceChildren(...r.names.map((n) => h('option', { value: n }, n)));
    if (keep) nameSel.value = keep;
    const forumSel = $('#sw-forum');
    const keepForum = forumSel.value;
    forumSel.replaceChildren(h('option', { value: '' }, tx('sw_all_forums')), ...state.forums.map((f) => h('option', { value: f.name }, f.name)));
    forumSel.value = keepForum;
    const rows = [];
    for (const name of r.names) {
      const recs = r.switches.filter((s) => s.name === name);
      if (!recs.some((s) => s.forum == null)) {
        rows.push(h('tr', { 'data-switch': name, 'data-scope': 'global' },
          h('th', { scope: 'row' }, name), h('td', {}, tx('sw_global')), h('td', {}, h('span', { class: 'badge on' }, tx('on'))),
          h('td', {}, ''), h('td', { class: 'muted' }, tx('sw_default')), h('td', {}, ''),
          h('td', {}, h('button', { type: 'button', class: 'btn small', 'aria-label': tx('sw_turn_off_label', { name }), onclick: () => setSwitch(name, { on: false }).catch((e) => toast(e.message, true)) }, tx('sw_turn_off')))));
      }
      for (const s of recs) {
        const sels = [s.percent != null ? tx('sw_percent_readers', { n: fmtNum(s.percent) }) : null, s.staff ? tx('sw_staff_sel') : null].filter(Boolean);
        let sel;
        try { sel = new Intl.ListFormat(LANG, { type: 'disjunction' }).format(sels); } catch (e) { sel = sels.join(' / '); }
        const scope = s.forum == null ? tx('sw_global') : tx('sw_forum_scope', { forum: s.forum });
        rows.push(h('tr', { 'data-switch': name, 'data-scope': s.forum == null ? 'global' : s.forum },
          h('th', { scope: 'row' }, name), h('td', {}, scope),
          h('td', {}, h('span', { class: 'badge ' + (s.on ? 'on' : 'off') }, tx(s.on ? 'on' : 'off'))),
          h('td', {}, sel ? tx('sw_rest', { selectors: sel, value: tx(s.on ? 'off' : 'on') }) : tx('sw_everyone')),
          h('td', {}, s.changed_by), h('td', {}, when(s.changed_at)),
          h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'btn small', 'aria-label': tx('sw_flip_label', { name, scope }), onclick: () =>
              setSwitch(name, { on: !s.on, forum: s.forum, percent: s.percent, staff: s.staff }).catch((e) => toast(e.message, true)) }, tx(sel ? 'sw_flip' : s.on ? 'sw_turn_off' : 'sw_turn_on')),
            h('button', { type: 'button', class: 'btn small', 'aria-label': tx('sw_reset_label', { name, scope }), onclick: async () => {
              try {
                await api('DELETE', '/switches/' + encodeURIComponent(name) + (s.forum == null ? '' : '?forum=' + encodeURIComponent(s.forum)));
                toast(tx('sw_reset_toast', { name, scope }));
                loadSwitches();
              } catch (e) { toast(e.message, true); }
            } }, tx('sw_reset')))));
      }
    }
    $('#switches').replaceChildren(...rows);
  }
  on($('#switch-form'), 'submit', async (e) => {
    e.preventDefault();
    const pct = $('#sw-percent').value.trim();
    const body = {
      on: $('#sw-on').value === 'on',
      forum: $('#sw-forum').value || null,
      percent: pct ? Number(pct) : null,
      staff: $('#sw-staff').checked,
    };
    try { await setSwitch($('#sw-name').value, body); } catch (ex) { toast(ex.message, true); }
  });

  // ---------------------------------------------------------------------------------------
  // Session.
  on($('#login-form'), 'submit', async (e) => {
    e.preventDefault();
    const err = $('#login-error');
    err.textContent = '';
    const v = Object.fromEntries(new FormData(e.target));
    try {
      await api('POST', '/sessions', { login: v.login, password: v.password });
      e.target.reset();
      boot();
    } catch (ex) { err.textContent = ex.message; }
  });
  on($('#logout'), 'click', async () => {
    try { await api('DELETE', '/sessions'); } catch (e) { /* signed out either way */ }
    state.me = null;
    showLogin();
  });
  on($('#forum'), 'change', (e) => { state.forum = e.target.value; state.q = ''; $('#search').value = ''; loadForum(); });

  loadStrings().then(boot);
})();
