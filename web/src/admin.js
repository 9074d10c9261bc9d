// Confab moderation dashboard. Same origin as the API: the session is the HttpOnly cookie set
// at sign-in (scripts never see it), and every write is JSON (an import's upload:
// application/octet-stream), which a cross-site form cannot send.
// User-provided text goes in as text nodes; comment bodies are the server's sanitized HTML.
(() => {
  'use strict';
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
    } catch (e) { throw new ApiError('network', 'Could not reach the server.', 0); }
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

  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const when = (v) => fmt.format(typeof v === 'number' ? new Date(v) : new Date(v));

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
    $('#who').textContent = 'Signed in as ' + state.me.display_name;
    // Staff also manage moderators and feature switches.
    TABS = state.me.is_staff ? BASE_TABS.concat(STAFF_TABS) : BASE_TABS;
    for (const t of STAFF_TABS) $('#tab-' + t).hidden = !state.me.is_staff;
    $('#reader-staff').hidden = !state.me.is_staff;
    const sel = $('#forum');
    sel.replaceChildren(...state.forums.map((f) => h('option', { value: f.name }, f.settings.title + ' (' + f.name + ')')));
    if (!state.forums.length) {
      $('#main').replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'No forums'),
        h('p', {}, 'This account moderates no forum. An operator can grant one with confab admin create-account … --moderator-of FORUM.')));
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
    $('#stats-total').textContent = total + ' in the last 30 days';
    const max = Math.max(1, ...daily.map((d) => d.count));
    const W = 720, H = 120, pad = 22, bw = (W - pad) / Math.max(1, daily.length);
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H + 18}`, role: 'img', 'aria-label': `Comments per day for the last ${daily.length} days: ${total} in total, at most ${max} on one day.` });
    for (const frac of max > 1 ? [0, 0.5, 1] : [0, 1]) {
      const y = H - frac * (H - 8);
      svg.append(h('svg:line', { x1: pad, x2: W, y1: y, y2: y, class: 'grid' }));
      svg.append(h('svg:text', { x: pad - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(frac * max))));
    }
    daily.forEach((d, i) => {
      const bh = d.count ? Math.max(2, (d.count / max) * (H - 8)) : 0;
      const x = pad + i * bw + 1;
      const bar = h('svg:rect', { x, y: H - bh, width: Math.max(1, bw - 2), height: bh, rx: 2, class: 'bar' });
      bar.append(h('svg:title', {}, `${d.day}: ${d.count}`));
      svg.append(bar);
      if (i % 7 === 0 || (i === daily.length - 1 && i % 7 > 3)) svg.append(h('svg:text', { x: x + bw / 2, y: H + 14, 'text-anchor': 'middle', class: 'axis' }, d.day.slice(5)));
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
  const LABEL = { approve: 'Approve', spam: 'Spam', delete: 'Delete', restore: 'Restore', ban: 'Ban author' };
  const DONE = { approve: 'approved', spam: 'marked as spam', delete: 'deleted', restore: 'restored' };

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
    return h('button', { type: 'button', class: 'chip', title: title || 'Search for ' + value, onclick: () => search(value) }, label);
  }

  function renderItem(c) {
    const li = h('li', { class: 'item status-' + c.status, 'data-id': c.id });
    const box = h('input', { type: 'checkbox', class: 'pick', 'aria-label': 'Select comment by ' + c.author.name, onchange: updateBulk });
    const meta = h('div', { class: 'meta' },
      h('strong', { class: 'author' }, c.author.name),
      c.author.account_id ? h('span', { class: 'muted' }, 'account ' + c.author.account_id) : h('span', { class: 'muted' }, 'guest'),
      c.author_email ? chip(c.author_email, c.author_email) : null,
      chip('IP ' + c.ip_hash, c.ip_hash, 'Search for this IP hash'),
      h('time', { datetime: c.created_at, title: c.created_at }, when(c.created_at)),
      h('span', { class: 'badge status' }, c.status),
      c.flag_count ? h('span', { class: 'badge flags' }, c.flag_count === 1 ? '1 flag' : c.flag_count + ' flags') : null,
      c.held_reason ? h('span', { class: 'badge held-reason' }, c.held_reason) : null,
      c.parent_id ? h('span', { class: 'muted' }, 'reply') : null);
    const body = h('div', { class: 'body' }, bodyFragment(c.body_html));
    const pics = (c.images || []).length ? h('div', { class: 'pics' }, c.images.map((im) => h('figure', { class: 'pic' },
      h('a', { href: im.url, target: '_blank', rel: 'noopener', title: 'Open the full picture' },
        h('img', { src: im.url, width: im.width, height: im.height, loading: 'lazy', alt: 'Picture attached by ' + c.author.name })),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'remove-image', onclick: () => removeImage(c, im) }, 'Remove picture')))) : null;
    const ctx = itemContext(c);
    const acts = h('div', { class: 'acts' });
    for (const a of (ACTIONS[c.status] || [])) {
      acts.append(h('button', { type: 'button', class: 'btn small' + (a === 'approve' || a === 'restore' ? ' primary' : ''), 'data-action': a, onclick: () => moderate([c.id], a) }, LABEL[a]));
    }
    acts.append(h('button', { type: 'button', class: 'btn small danger', 'data-action': 'ban', onclick: () => openBanDialog([c.id]) }, LABEL.ban));
    acts.append(h('button', { type: 'button', class: 'btn small danger', 'data-action': 'shadow-ban', title: 'The author may still post and sees their comments as published; nobody else sees them', onclick: () => ban([c.id], true) }, 'Shadow-ban author'));
    li.append(h('div', { class: 'pick-col' }, box), h('div', { class: 'main' }, meta, ctx, body, pics, acts));
    return li;
  }

  function selected() { return $$('#items .pick:checked').map((b) => b.closest('li').dataset.id); }

  function updateBulk() {
    const n = selected().length;
    const all = $$('#items .pick');
    $('#selected-count').textContent = n ? n + ' selected' : 'Select all';
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
      toast((r.changed === 1 ? '1 comment ' : r.changed + ' comments ') + DONE[action] + '.');
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
      toast('Picture removed.');
    } catch (e) { toast(e.message, true); }
  }

  async function ban(ids, shadow = false) {
    let n = 0;
    for (const id of ids) {
      try { await api('POST', '/forums/' + encodeURIComponent(state.forum) + '/bans', { comment_id: id, reason: shadow ? 'shadow-banned from the dashboard' : 'banned from the dashboard', shadow }); n++; } catch (e) { toast(e.message, true); }
    }
    if (n) toast((n === 1 ? 'Author ' : n + ' authors ') + (shadow ? 'shadow-banned.' : 'banned.'));
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
      toast('Banned.');
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
        toast(`Exported ${data.comments.length} comment(s).`);
        return;
      }
      const what = action === 'delete' ? `Delete the account ${who} and ${v.comments} its comments on every forum?`
        : `Erase what ${who} left on ${state.forum} (${v.comments === 'keep' ? 'text kept as "deleted user"' : 'comments removed'})?`;
      if (!window.confirm(what + ' This cannot be undone.')) return;
      const r = action === 'delete'
        ? await api('POST', staffPath + '/delete', { comments: v.comments })
        : await api('POST', `/forums/${forum}/readers/erase`, { ...target, comments: v.comments });
      toast(r.state === 'done'
        ? `Erased ${r.comments} comment(s).` + (r.account_deleted ? ' The account is deleted.' : '')
        : 'Erasing; the rest follows in the background.');
      e.target.reset();
    } catch (ex) { toast(ex.message, true); }
  });
  // Moderation with context: queue sizes on the tabs, each item's thread, flags and author.
  function showCounts(counts) {
    if (!counts) return;
    for (const q of ['pending', 'flagged', 'spam']) {
      const el = document.querySelector(`.qcount[data-count="${q}"]`);
      const n = counts[q] || 0;
      el.textContent = n ? (n >= counts.cap ? counts.cap + '+' : String(n)) : '';
    }
  }
  async function refreshCounts() {
    try { showCounts((await api('GET', '/forums/' + encodeURIComponent(state.forum) + '/comments?queue=pending&limit=1')).counts); } catch (e) { /* counts are a hint */ }
  }
  function itemContext(c) {
    const t = c.thread || {};
    const title = t.title || t.ident || 'a thread';
    const parts = [h('span', { class: 'thread' }, 'On ',
      c.link ? h('a', { href: c.link, target: '_blank', rel: 'noopener', class: 'in-place', title: 'See this comment on the site' }, title) : h('strong', {}, title))];
    if (c.flag_reasons && c.flag_reasons.length) {
      parts.push(h('span', { class: 'flag-reasons' }, 'Flagged: ' + c.flag_reasons.map((f) => (f.reason || 'no reason given') + (f.count > 1 ? ' ×' + f.count : '')).join(', ')));
    }
    const hi = c.author_history;
    if (hi) {
      parts.push(h('span', { class: 'history', title: 'This author on this site' },
        `Author: ${hi.approved} approved · ${hi.pending} pending · ${hi.spam} spam · ${hi.deleted} deleted · since ${when(hi.first_seen)}`));
    }
    return h('div', { class: 'context' }, parts);
  }

  // ---------------------------------------------------------------------------------------
  // The ban dialog: what (only the choices every chosen author has), for how long, why.
  const BAN_LABEL = { account: 'Account', email: 'E-mail', ip: 'IP address', 'ip+email': 'IP + e-mail' };
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
    $('#ban-dialog-who').textContent = items.length === 1 ? items[0].author.name : items.length + ' authors';
    $('#ban-what').replaceChildren(...choices.map((k, i) => h('label', { class: 'check' },
      h('input', { type: 'radio', name: 'kind', value: k, checked: i === 0, onchange: banDefaults }), ' ' + BAN_LABEL[k])));
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
    const until = duration === 'forever' ? 'for good' : duration === 'day' ? 'for a day' : 'for a week';
    toast((n === 1 ? 'Author banned ' : n + ' authors banned ') + until + ' (' + BAN_LABEL[kind] + ').');
    if (state.tab === 'bans') loadBans();
  });
  function banRow(b) {
    const by = b.created_by ? (state.me && b.created_by.id === state.me.id ? 'you' : (b.created_by.name || 'account ' + b.created_by.id)) : '';
    const until = b.expires_at ? when(b.expires_at) : 'for good';
    return h('tr', { class: b.active ? '' : 'lapsed-row' },
      h('td', {}, b.shadow ? b.kind + ' (shadow)' : b.kind),
      h('td', {}, b.shown),
      h('td', {}, b.reason || ''),
      h('td', {}, by),
      h('td', {}, when(b.created_at)),
      h('td', {}, b.active ? until : h('span', { class: 'lapsed', title: 'Lapsed: it no longer matches' }, until)),
      h('td', {}, h('button', { type: 'button', class: 'btn small', 'aria-label': 'Lift ban on ' + b.shown, onclick: async () => {
        try { await api('DELETE', '/forums/' + encodeURIComponent(state.forum) + '/bans/' + b.id); toast('Ban lifted.'); loadBans(); } catch (e) { toast(e.message, true); }
      } }, 'Lift')));
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
      msg.textContent = 'Saved.';
      toast('Rules saved.');
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
    $('#s-sso-state').textContent = f.sso
      ? '(set; type a new one to replace it)'
      : '(not set: readers signed in at your site sign in here once you set one)';
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
      msg.textContent = 'Saved.';
      showSso(f);
      const i = state.forums.findIndex((x) => x.name === f.name);
      if (i >= 0) state.forums[i] = f;
      const opt = $(`#forum option[value="${CSS.escape(f.name)}"]`);
      if (opt) opt.textContent = f.settings.title + ' (' + f.name + ')';
      toast('Settings saved.');
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
      msg.textContent = 'The thread ' + r.thread.ident + ' (' + n + (n === 1 ? ' comment' : ' comments') + ') answers to: ' +
        [r.thread.ident].concat(r.aliases).join(', ');
      $('#m-from').value = '';
      $('#m-to').value = '';
      toast('Thread moved.');
    } catch (ex) {
      msg.classList.add('error');
      msg.textContent = ex.message;
    }
  });

  // ---------------------------------------------------------------------------------------
  // Import comments (staff): the file is the request's body; the import runs in the background
  // on the server that received it, and its record is polled every second while it runs.
  const imp = { gen: 0, timer: null, max: 0 };
  const mib = (n) => (n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB');

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
        status.textContent = name + ': ' + r.comments_written + ' of ' + r.comments_total + ' comments written';
      } else {
        bar.removeAttribute('value');
        status.textContent = name + ': reading ' + r.posts_read + ' posts';
      }
    } else if (r.state === 'done') {
      bar.max = 1; bar.value = 1;
      status.textContent = name + ': done.';
      summary.textContent = r.summary;
      summary.hidden = false;
    } else {
      bar.max = 1; bar.value = 0;
      status.classList.add('error');
      status.textContent = r.state === 'interrupted'
        ? name + ': interrupted (the server running it stopped). Upload the file again: what was imported is not imported twice.'
        : name + ': failed. ' + r.error;
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
      else { $('#i-upload').disabled = false; if (r.state === 'done') { toast('Import done.'); loadStats(); } }
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
    const labels = {
      disqus: 'Disqus (XML export)', wordpress: 'WordPress (WXR export)',
      isso: 'Isso (its SQLite database)', remark42: 'Remark42 (backup file)',
    };
    sel.replaceChildren(...r.formats.map((f) => h('option', { value: f }, labels[f] || f)));
    if (keep && r.formats.includes(keep)) sel.value = keep;
    imp.max = r.max_upload_bytes;
    $('#i-limit').textContent = 'At most ' + mib(r.max_upload_bytes) + '.';
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
    if (!file) { fail('Choose the export file first.'); return; }
    if (imp.max && file.size > imp.max) { fail(file.name + ' is ' + mib(file.size) + ': over the limit of ' + mib(imp.max) + '.'); return; }
    const gen = ++imp.gen;
    clearTimeout(imp.timer);
    $('#i-upload').disabled = true;
    $('#i-progress-box').hidden = false;
    $('#i-summary').hidden = true;
    $('#i-progress').removeAttribute('value');
    status.classList.remove('error');
    status.textContent = 'Uploading ' + file.name + ' (' + mib(file.size) + ')…';
    let res, data = null;
    try {
      res = await fetch('/api/v1/forums/' + encodeURIComponent(state.forum) + '/imports?format=' + encodeURIComponent($('#i-format').value), {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/octet-stream', 'X-File-Name': encodeURIComponent(file.name) },
        body: file,
      });
      try { data = await res.json(); } catch (ex) { data = null; }
    } catch (ex) { $('#i-upload').disabled = false; fail('Could not reach the server.'); return; }
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
      h('td', {}, e.actor ? (state.me && e.actor === state.me.id ? 'you' : (e.actor_name || 'account ' + e.actor)) : 'system'),
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
      h('td', {}, h('code', {}, m.username)), h('td', {}, m.display_name), h('td', {}, m.is_staff ? 'staff, moderator' : 'moderator'),
      h('td', {}, h('button', { type: 'button', class: 'btn small danger', 'aria-label': 'Remove ' + m.username + ' as moderator', onclick: async () => {
        try {
          await api('DELETE', '/forums/' + forum + '/moderators/' + encodeURIComponent(m.username));
          toast(m.username + ' no longer moderates ' + state.forum + '.');
          loadModerators();
        } catch (e) { toast(e.message, true); }
      } }, 'Remove')))));
    $('#moderators-empty').hidden = list.length > 0;
  }
  on($('#mod-form'), 'submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const name = new FormData(f).get('username').trim();
    try {
      await api('PUT', '/forums/' + encodeURIComponent(state.forum) + '/moderators/' + encodeURIComponent(name));
      f.reset();
      toast(name + ' now moderates ' + state.forum + '.');
      loadModerators();
    } catch (ex) { toast(ex.message, true); }
  });

  // ---------------------------------------------------------------------------------------
  // Feature switches (staff).
  async function setSwitch(name, body) {
    await api('PUT', '/switches/' + encodeURIComponent(name), body);
    toast('Switch ' + name + ' set ' + (body.on ? 'on' : 'off') + (body.forum ? ' for ' + body.forum : '') + '.');
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
    forumSel.replaceChildren(h('option', { value: '' }, 'All forums (global)'), ...state.forums.map((f) => h('option', { value: f.name }, f.name)));
    forumSel.value = keepForum;
    const rows = [];
    for (const name of r.names) {
      const recs = r.switches.filter((s) => s.name === name);
      if (!recs.some((s) => s.forum == null)) {
        rows.push(h('tr', { 'data-switch': name, 'data-scope': 'global' },
          h('th', { scope: 'row' }, name), h('td', {}, 'global'), h('td', {}, h('span', { class: 'badge on' }, 'on')),
          h('td', {}, ''), h('td', { class: 'muted' }, 'default'), h('td', {}, ''),
          h('td', {}, h('button', { type: 'button', class: 'btn small', 'aria-label': 'Turn ' + name + ' off everywhere', onclick: () => setSwitch(name, { on: false }).catch((e) => toast(e.message, true)) }, 'Turn off'))));
      }
      for (const s of recs) {
        const sel = [s.percent != null ? s.percent + '% of readers' : null, s.staff ? 'staff' : null].filter(Boolean).join(' or ');
        const scope = s.forum == null ? 'global' : 'forum ' + s.forum;
        rows.push(h('tr', { 'data-switch': name, 'data-scope': s.forum == null ? 'global' : s.forum },
          h('th', { scope: 'row' }, name), h('td', {}, scope),
          h('td', {}, h('span', { class: 'badge ' + (s.on ? 'on' : 'off') }, s.on ? 'on' : 'off')),
          h('td', {}, sel ? sel + ' (the rest: ' + (s.on ? 'off' : 'on') + ')' : 'everyone'),
          h('td', {}, s.changed_by), h('td', {}, when(s.changed_at)),
          h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'btn small', 'aria-label': 'Flip ' + name + ' ' + scope, onclick: () =>
              setSwitch(name, { on: !s.on, forum: s.forum, percent: s.percent, staff: s.staff }).catch((e) => toast(e.message, true)) }, sel ? 'Flip' : s.on ? 'Turn off' : 'Turn on'),
            h('button', { type: 'button', class: 'btn small', 'aria-label': 'Reset ' + name + ' ' + scope, onclick: async () => {
              try {
                await api('DELETE', '/switches/' + encodeURIComponent(name) + (s.forum == null ? '' : '?forum=' + encodeURIComponent(s.forum)));
                toast('Switch ' + name + ' reset (' + scope + ').');
                loadSwitches();
              } catch (e) { toast(e.message, true); }
            } }, 'Reset'))));
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

  boot();
})();
