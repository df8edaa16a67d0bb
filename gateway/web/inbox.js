// Switchboard agent inbox. Also carries the small helper for the sign-in page.
//
// Safety rule for this file: text that comes from customers or users is only ever
// written with textContent / createElement, never parsed as HTML.
(() => {
  'use strict';

  const page = document.body.dataset.page;
  if (page === 'login') {
    initLogin();
    return;
  }
  if (page !== 'inbox') return;

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  const { el } = window.Switchboard;

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function debounce(fn, ms) {
    let t = null;
    return () => {
      clearTimeout(t);
      t = setTimeout(fn, ms);
    };
  }

  const idOf = (x) => (typeof x === 'string' ? x : x && typeof x === 'object' ? x.id || null : null);

  function asText(x) {
    if (x === null || x === undefined) return '';
    if (typeof x === 'string') return x;
    try {
      return JSON.stringify(x);
    } catch {
      return String(x);
    }
  }

  const rtf = typeof Intl.RelativeTimeFormat === 'function' ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

  function relTime(iso) {
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return '';
    const s = Math.round((t - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a < 45) return 'just now';
    if (!rtf) return new Date(t).toLocaleString();
    if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
    if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
    if (a < 86400 * 7) return rtf.format(Math.round(s / 86400), 'day');
    return new Date(t).toLocaleDateString();
  }

  function timeEl(iso, className) {
    const node = el('time', className, relTime(iso));
    if (iso) {
      node.dateTime = iso;
      node.dataset.ts = iso;
      const t = Date.parse(iso);
      if (Number.isFinite(t)) node.title = new Date(t).toLocaleString();
    }
    return node;
  }

  function clockTime(iso) {
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return '';
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  const CHANNELS = { web_chat: 'Web chat', voice: 'Voice', sms: 'SMS', whatsapp: 'WhatsApp', email: 'Email' };
  const channelLabel = (c) => CHANNELS[c] || String(c || 'unknown').replace(/_/g, ' ');

  const DISPOSITIONS = {
    resolved: 'resolved',
    resolved_by_bot: 'resolved by bot',
    follow_up: 'follow-up needed',
    abandoned: 'abandoned',
    spam: 'spam',
    transferred: 'transferred',
  };
  const dispositionLabel = (d) => DISPOSITIONS[d] || asText(d);

  // ---------------------------------------------------------------- state

  const state = {
    me: null,
    csrf: '',
    directory: new Map(),
    view: 'unassigned',
    status: 'open',
    conversations: [],
    listToken: 0,
    currentId: null,
    current: null,
    lastSeq: 0,
    loading: false,
    openToken: 0,
    catchUpPromise: null,
    catchUpAgain: false,
    sending: false,
    pendingReply: null, // {text, client_msg_id} kept for a retry after a failed send
    ws: null,
    backoff: 500,
    failures: 0,
    reconnectTimer: null,
    hadDisconnect: false,
    typingTimer: null,
    agentTypingTimer: null,
    typingSentFor: null,
  };

  // ---------------------------------------------------------------- API

  const api = window.Switchboard.client({ csrf: () => state.csrf, refresh: () => loadMe() });

  async function loadMe() {
    const data = await api('GET', '/api/me');
    state.me = data.user;
    state.csrf = data.csrf_token || '';
    return data;
  }

  async function loadDirectory() {
    const data = await api('GET', '/api/directory');
    state.directory = new Map((data.users || []).map((u) => [u.id, u]));
  }

  const refreshDirectorySoon = (() => {
    let last = 0;
    return () => {
      if (Date.now() - last < 10000) return;
      last = Date.now();
      loadDirectory()
        .then(() => {
          renderList();
          renderHeader();
        })
        .catch(() => {});
    };
  })();

  async function fetchEvents(id, after) {
    const all = [];
    let cursor = after;
    for (;;) {
      const data = await api('GET', `/api/conversations/${encodeURIComponent(id)}/events?after=${cursor}&limit=500`);
      const evs = (data && data.events) || [];
      all.push(...evs);
      if (evs.length < 500) break;
      cursor = evs[evs.length - 1].seq;
    }
    return all;
  }

  // ---------------------------------------------------------------- status messages

  let flashTimer = null;
  function flash(message, kind) {
    const f = $('flash');
    clearTimeout(flashTimer);
    f.className = `flash ${kind || ''}`;
    f.textContent = message;
    flashTimer = setTimeout(() => {
      f.textContent = '';
    }, kind === 'error' ? 15000 : 6000);
  }

  function showError(e) {
    flash((e && e.message) || 'Something went wrong.', 'error');
  }

  function announce(text) {
    const a = $('announcer');
    a.textContent = '';
    // A fresh text node is announced even when the wording repeats.
    setTimeout(() => {
      a.textContent = text.length > 240 ? `${text.slice(0, 240)}…` : text;
    }, 50);
  }

  // ---------------------------------------------------------------- names

  function agentName(id) {
    if (!id) return 'Unassigned';
    if (state.me && id === state.me.id) return `${state.me.name} (you)`;
    const u = state.directory.get(id);
    if (u) return u.name;
    refreshDirectorySoon();
    return 'Unknown agent';
  }

  function contactName(conv) {
    const n = conv && conv.contact && conv.contact.display_name;
    return n && String(n).trim() ? String(n) : 'Visitor';
  }

  function participantLabel(p, conv) {
    if (!p) return 'System';
    if (typeof p === 'string') return agentName(p); // a bare id names a staff member
    switch (p.kind) {
      case 'customer':
        return contactName(conv);
      case 'agent':
        return agentName(p.id);
      case 'bot':
        return 'Bot';
      default:
        return 'System';
    }
  }

  // ---------------------------------------------------------------- conversation list

  async function loadList() {
    const token = ++state.listToken;
    const q = new URLSearchParams({ view: state.view, status: state.status, limit: '50' });
    const data = await api('GET', `/api/conversations?${q}`);
    if (token !== state.listToken) return;
    state.conversations = (data && data.conversations) || [];
    renderList();
  }

  const scheduleListRefresh = debounce(() => {
    loadList().catch(showError);
  }, 300);

  function renderList() {
    const ul = $('conversation-list');
    const active = document.activeElement;
    const focusedId = active && active.closest && active.closest('.conversation-item') ? active.closest('.conversation-item').dataset.id : null;

    const items = state.conversations.map(renderListItem);
    if (!items.length) {
      const empty = el('li', 'empty', state.view === 'unassigned' ? 'No conversations are waiting. Nice work.' : 'No conversations in this view.');
      items.push(empty);
    }
    ul.replaceChildren(...items);

    if (focusedId) {
      const again = ul.querySelector(`.conversation-item[data-id="${CSS.escape(focusedId)}"] > button`);
      if (again) again.focus();
    }
  }

  function renderListItem(c) {
    const li = el('li', 'conversation-item');
    li.dataset.id = c.id;
    if (c.id === state.currentId) li.setAttribute('aria-current', 'true');

    const btn = el('button');
    btn.type = 'button';

    const line = el('span', 'conv-line');
    line.append(el('span', 'conv-name', contactName(c)), timeEl(c.updated_at || c.opened_at, 'conv-time'));

    const preview = el('span', 'conv-preview', c.last_message_preview || 'No messages yet');

    const meta = el('span', 'conv-meta');
    meta.append(el('span', 'chip', channelLabel(c.channel)));
    if (c.status === 'closed') meta.append(el('span', 'chip closed', 'Closed'));
    meta.append(el('span', 'conv-assignee', c.assignee ? agentName(idOf(c.assignee)) : 'Unassigned'));

    btn.append(line, preview, meta);
    btn.addEventListener('click', () => openConversation(c.id));
    li.append(btn);
    return li;
  }

  function markCurrentInList() {
    for (const li of $('conversation-list').querySelectorAll('.conversation-item')) {
      if (li.dataset.id === state.currentId) li.setAttribute('aria-current', 'true');
      else li.removeAttribute('aria-current');
    }
  }

  // Keep a conversation object in step with one of its events.
  function fold(conv, env) {
    const ev = env.event || {};
    if (env.seq) conv.last_seq = Math.max(conv.last_seq || 0, env.seq);
    if (env.at) conv.updated_at = env.at;
    switch (ev.type) {
      case 'message_added':
        conv.last_message_preview = ev.text;
        conv.message_count = (conv.message_count || 0) + 1;
        break;
      case 'assigned':
        conv.assignee = idOf(ev.agent);
        conv.waiting_since = null;
        break;
      case 'unassigned':
        conv.assignee = null;
        break;
      case 'conversation_closed':
        conv.status = 'closed';
        conv.disposition = ev.disposition || null;
        conv.closed_at = env.at || null;
        break;
      case 'conversation_reopened':
        conv.status = 'open';
        conv.disposition = null;
        conv.closed_at = null;
        break;
      case 'tags_changed': {
        const tags = new Set(conv.tags || []);
        for (const t of ev.added || []) tags.add(t);
        for (const t of ev.removed || []) tags.delete(t);
        conv.tags = [...tags];
        break;
      }
      default:
        break;
    }
  }

  function foldIntoList(env) {
    const i = state.conversations.findIndex((c) => c.id === env.conversation_id);
    if (i < 0) return;
    const c = state.conversations[i];
    if (env.seq && c.last_seq && env.seq <= c.last_seq) return;
    fold(c, env);
    const ul = $('conversation-list');
    const old = ul.querySelector(`.conversation-item[data-id="${CSS.escape(c.id)}"]`);
    if (old) {
      const hadFocus = old.contains(document.activeElement);
      const fresh = renderListItem(c);
      old.replaceWith(fresh);
      if (hadFocus) fresh.querySelector('button').focus();
    }
  }

  // ---------------------------------------------------------------- open conversation

  async function openConversation(id, opts) {
    const focusComposer = opts && opts.focusComposer;
    if (!id) return;
    if (state.currentId && state.currentId !== id) sendWs({ type: 'unwatch', conversation_id: state.currentId });
    const token = ++state.openToken;
    state.currentId = id;
    state.current = null;
    state.lastSeq = 0;
    state.loading = true;
    state.pendingReply = null;
    hideTyping();
    if (location.hash !== `#c=${id}`) history.replaceState(null, '', `#c=${id}`);
    markCurrentInList();

    const tl = $('timeline');
    tl.setAttribute('aria-busy', 'true');
    tl.replaceChildren(el('p', 'placeholder', 'Loading conversation…'));

    try {
      const [conv, events] = await Promise.all([
        api('GET', `/api/conversations/${encodeURIComponent(id)}`),
        fetchEvents(id, 0),
      ]);
      if (token !== state.openToken) return;
      state.current = conv;
      tl.replaceChildren();
      state.loading = false;
      ingest(events, false);
      tl.removeAttribute('aria-busy');
      tl.scrollTop = tl.scrollHeight;
      $('composer').hidden = false;
      renderHeader();
      sendWatch();
      if (focusComposer) $('reply-text').focus();
    } catch (e) {
      if (token !== state.openToken) return;
      state.loading = false;
      tl.removeAttribute('aria-busy');
      tl.replaceChildren(el('p', 'placeholder', 'This conversation could not be loaded.'));
      showError(e);
    }
  }

  function renderHeader() {
    const c = state.current;
    const has = Boolean(c);
    $('conv-facts').hidden = !has;
    $('conv-actions').hidden = !has;
    if (!has) {
      $('conv-title').textContent = state.currentId ? 'Loading…' : 'No conversation selected';
      return;
    }
    $('conv-title').textContent = contactName(c);
    $('conv-channel').textContent = channelLabel(c.channel);
    const closed = c.status === 'closed';
    $('conv-status').textContent = closed ? `closed${c.disposition ? ` (${dispositionLabel(c.disposition)})` : ''}` : String(c.status || 'open');
    const assignee = idOf(c.assignee);
    $('conv-assignee').textContent = assignee ? agentName(assignee) : 'Unassigned';

    const mine = assignee && state.me && assignee === state.me.id;
    $('assign-self').disabled = Boolean(mine) || closed;
    $('assign-self').title = mine ? 'Already assigned to you' : '';
    $('close-group').hidden = closed;
    $('reopen').hidden = !closed;
    updateComposer();
  }

  // Replies to a closed conversation are refused by the server; notes are still allowed.
  function updateComposer() {
    const closed = Boolean(state.current && state.current.status === 'closed');
    $('send-reply').disabled = state.sending || closed;
    $('send-note').disabled = state.sending;
    $('reply-text').placeholder = closed
      ? 'This conversation is closed. Reopen it to reply, or add an internal note.'
      : 'Write a reply… (Enter to send, Shift+Enter for a new line)';
  }

  // ---------------------------------------------------------------- timeline

  function systemText(ev, conv) {
    const by = ev.by ? participantLabel(ev.by, conv) : '';
    const byPart = by && by !== 'System' ? ` by ${by}` : '';
    switch (ev.type) {
      case 'conversation_opened':
        return `Conversation started on ${channelLabel(ev.channel)}${ev.subject ? ` — ${asText(ev.subject)}` : ''}`;
      case 'assigned': {
        const agent = idOf(ev.agent);
        const self = ev.by && ev.by.kind === 'agent' && ev.by.id === agent;
        return `Assigned to ${agentName(agent)}${self ? '' : byPart}`;
      }
      case 'unassigned':
        return `Unassigned from ${agentName(idOf(ev.agent))}${byPart}`;
      case 'handoff_requested': {
        const bits = [];
        if (ev.skill) bits.push(`skill: ${asText(ev.skill)}`);
        if (ev.reason) bits.push(`reason: ${asText(ev.reason).replace(/_/g, ' ')}`);
        const ctx = ev.context || {};
        if (ctx.intent) bits.push(`intent: ${asText(ctx.intent)}`);
        if (ctx.language) bits.push(`language: ${asText(ctx.language)}`);
        if (Array.isArray(ctx.knowledge_hits) && ctx.knowledge_hits.length) bits.push(`knowledge shown: ${ctx.knowledge_hits.map(asText).join(', ')}`);
        if (ctx.summary) bits.push(`note: ${asText(ctx.summary)}`);
        return `Handoff to an agent requested${bits.length ? ` (${bits.join('; ')})` : ''}`;
      }
      case 'queued':
        return `Waiting in queue ${asText(ev.queue)}${ev.position ? ` · position ${ev.position}` : ''}${ev.ewt_secs != null ? ` · expected wait ${Math.max(1, Math.round(ev.ewt_secs / 60))} min` : ''}`;
      case 'offered':
        return `Offered to ${agentName(idOf(ev.agent))} (${asText(ev.why)})`;
      case 'offer_answered':
        return `${agentName(idOf(ev.agent))} ${ev.accepted ? 'accepted' : 'declined'} the offer`;
      case 'offer_withdrawn':
        return `Offer to ${agentName(idOf(ev.agent))} withdrawn: ${asText(ev.reason).replace(/_/g, ' ')}`;
      case 'dequeued':
        return `Left queue ${asText(ev.queue)}: ${asText(ev.reason).replace(/_/g, ' ')}`;
      case 'bot_turn': {
        const cites = Array.isArray(ev.citations) && ev.citations.length ? ` · cited: ${ev.citations.map(asText).join('; ')}` : '';
        return `Virtual agent: ${asText(ev.decision).replace(/_/g, ' ')} (intent ${asText(ev.intent)}) — ${asText(ev.reason)}${cites}`;
      }
      case 'wrap_up_done':
        return `${agentName(idOf(ev.agent))} finished after-contact work`;
      case 'tags_changed': {
        const parts = [...(ev.added || []).map((t) => `+${asText(t)}`), ...(ev.removed || []).map((t) => `−${asText(t)}`)];
        return `Tags changed ${parts.join(' ')}${byPart}`;
      }
      case 'conversation_closed':
        return `Closed as ${dispositionLabel(ev.disposition)}${byPart}`;
      case 'conversation_reopened':
        return `Reopened${byPart}`;
      default:
        return String(ev.type || 'event').replace(/_/g, ' ');
    }
  }

  function buildEvent(env, conv) {
    const ev = env.event || {};
    const node = el('div', 'event');
    node.dataset.seq = String(env.seq);
    node.dataset.type = String(ev.type || '');

    if (ev.type === 'message_added') {
      const kind = (ev.from && ev.from.kind) || 'system';
      const cls = { customer: 'msg-customer', agent: 'msg-agent', bot: 'msg-bot' }[kind] || 'msg-system';
      node.classList.add('msg', cls);
      const who = el('div', 'who');
      who.append(el('span', 'author', participantLabel(ev.from, conv)), document.createTextNode(' · '), timeEl(env.at));
      const body = el('div', 'body', ev.text || '');
      node.append(who, body);
      const atts = Array.isArray(ev.attachments) ? ev.attachments : [];
      if (atts.length) {
        const list = el('ul', 'attachments');
        for (const a of atts) {
          const li = el('li');
          const name = asText((a && (a.name || a.filename)) || 'attachment');
          const url = a && typeof a.url === 'string' ? a.url : '';
          if (/^https?:\/\//i.test(url)) {
            const link = el('a', null, name);
            link.href = url;
            link.rel = 'noopener noreferrer';
            link.target = '_blank';
            li.append(link);
          } else {
            li.textContent = name;
          }
          list.append(li);
        }
        node.append(list);
      }
    } else if (ev.type === 'note_added') {
      node.classList.add('note');
      const who = el('div', 'who');
      who.append(el('span', 'author', `Internal note · ${participantLabel(ev.by, conv)}`), document.createTextNode(' · '), timeEl(env.at));
      node.append(who, el('div', 'body', ev.text || ''));
    } else {
      node.classList.add('system');
      node.append(el('span', 'body', systemText(ev, conv)), document.createTextNode(' · '), el('span', null, clockTime(env.at)));
    }
    return node;
  }

  // Append stored events of the open conversation, each seq at most once and in order.
  function ingest(envs, live) {
    const tl = $('timeline');
    const nearBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 80;
    const sorted = envs.filter((e) => e && e.conversation_id === state.currentId && e.seq > 0).sort((a, b) => a.seq - b.seq);
    let added = 0;
    for (const env of sorted) {
      if (env.seq <= state.lastSeq) continue;
      if (state.current && env.seq > (state.current.last_seq || 0)) fold(state.current, env);
      tl.append(buildEvent(env, state.current));
      state.lastSeq = env.seq;
      added += 1;
      const ev = env.event || {};
      if (live && ev.type === 'message_added' && ev.from && ev.from.kind === 'customer') {
        hideTyping();
        announce(`${contactName(state.current)} says: ${ev.text || ''}`);
      }
    }
    if (added) {
      renderHeader();
      if (nearBottom || !live) tl.scrollTop = tl.scrollHeight;
    }
  }

  // Fetch whatever is missing after the last shown seq; concurrent callers share one run.
  function catchUp() {
    if (state.catchUpPromise) {
      state.catchUpAgain = true;
      return state.catchUpPromise;
    }
    const id = state.currentId;
    state.catchUpPromise = (async () => {
      try {
        do {
          state.catchUpAgain = false;
          const evs = await fetchEvents(id, state.lastSeq);
          if (id !== state.currentId || state.loading) return;
          ingest(evs, true);
        } while (state.catchUpAgain);
      } catch (e) {
        showError(e);
      } finally {
        state.catchUpPromise = null;
      }
    })();
    return state.catchUpPromise;
  }

  // Events returned by our own POSTs or pushed live: append directly when contiguous,
  // otherwise fill the hole first so nothing is skipped.
  function ingestOrCatchUp(envs) {
    const mine = (envs || []).filter((e) => e && e.conversation_id === state.currentId && e.seq > state.lastSeq);
    if (!mine.length || state.loading) return;
    const first = Math.min(...mine.map((e) => e.seq));
    if (first > state.lastSeq + 1 || state.catchUpPromise) {
      catchUp().then(() => ingest(mine, true));
    } else {
      ingest(mine, true);
    }
  }

  function showTyping(ev) {
    const ind = $('typing-indicator');
    clearTimeout(state.typingTimer);
    if (ev.active && ev.by && ev.by.kind === 'customer') {
      ind.textContent = `${contactName(state.current)} is typing…`;
      state.typingTimer = setTimeout(hideTyping, 8000);
    } else {
      hideTyping();
    }
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    $('typing-indicator').textContent = '';
  }

  // ---------------------------------------------------------------- actions

  function setBusy(busy) {
    state.sending = busy;
    updateComposer();
  }

  async function send(kind) {
    const box = $('reply-text');
    const text = box.value.trim();
    const id = state.currentId;
    if (!id || state.sending) return;
    if (!text) {
      flash('Write something first.', 'error');
      box.focus();
      return;
    }
    if (kind !== 'note' && state.current && state.current.status === 'closed') {
      flash('This conversation is closed. Reopen it to reply, or press Ctrl+Enter to add an internal note.', 'error');
      return;
    }
    setBusy(true);
    stopAgentTyping();
    try {
      let res;
      if (kind === 'note') {
        res = await api('POST', `/api/conversations/${encodeURIComponent(id)}/notes`, { text });
      } else {
        // Re-sending the same text after a failure reuses its id so the server stores it once.
        if (!state.pendingReply || state.pendingReply.text !== text) state.pendingReply = { text, client_msg_id: uuid() };
        res = await api('POST', `/api/conversations/${encodeURIComponent(id)}/messages`, {
          text,
          client_msg_id: state.pendingReply.client_msg_id,
        });
        state.pendingReply = null;
      }
      if (state.currentId === id) {
        if (box.value.trim() === text) box.value = '';
        ingestOrCatchUp(res && res.events);
      }
      scheduleListRefresh();
    } catch (e) {
      showError(e);
    } finally {
      setBusy(false);
      if (state.currentId === id) box.focus();
    }
  }

  async function action(path, body, okText) {
    const id = state.currentId;
    if (!id) return;
    try {
      const res = await api('POST', `/api/conversations/${encodeURIComponent(id)}/${path}`, body);
      if (state.currentId === id) ingestOrCatchUp(res && res.events);
      scheduleListRefresh();
      if (okText) flash(okText, 'ok');
    } catch (e) {
      showError(e);
    }
  }

  // ---------------------------------------------------------------- WebSocket

  function sendWs(frame) {
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // The customer sees "Agent is typing…" while the agent writes a reply (not a note).
  function agentTyping() {
    const id = state.currentId;
    if (!id || (state.current && state.current.status === 'closed')) return;
    if (state.typingSentFor !== id && sendWs({ type: 'typing', conversation_id: id, active: true })) {
      state.typingSentFor = id;
    }
    clearTimeout(state.agentTypingTimer);
    state.agentTypingTimer = setTimeout(stopAgentTyping, 3000);
  }

  function stopAgentTyping() {
    clearTimeout(state.agentTypingTimer);
    if (state.typingSentFor) {
      sendWs({ type: 'typing', conversation_id: state.typingSentFor, active: false });
      state.typingSentFor = null;
    }
  }

  function sendWatch() {
    if (state.currentId && !state.loading) {
      sendWs({ type: 'watch', conversation_id: state.currentId, after: state.lastSeq });
    }
  }

  function setConnectionBanner(text) {
    const b = $('connection-status');
    if (text) {
      b.textContent = text;
      b.hidden = false;
    } else {
      b.textContent = '';
      b.hidden = true;
    }
  }

  function connectWs() {
    clearTimeout(state.reconnectTimer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/ws`);
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;

    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      state.backoff = 500;
      state.failures = 0;
      setConnectionBanner(null);
      sendWatch();
      if (state.hadDisconnect) {
        state.hadDisconnect = false;
        // Something may have changed while we were away: refresh what the list shows.
        loadMe()
          .then(() => Promise.all([loadDirectory(), loadList()]))
          .then(renderHeader)
          .catch(showError);
      }
    });

    ws.addEventListener('message', (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      handleFrame(frame);
    });

    ws.addEventListener('close', () => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.hadDisconnect = true;
      setConnectionBanner('Connection lost — reconnecting…');
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const delay = state.backoff;
    state.backoff = Math.min(state.backoff * 2, 5000);
    state.failures += 1;
    if (state.failures % 5 === 0) {
      // A socket that keeps failing may mean the session ended; /api/me redirects on 401.
      loadMe().catch(() => {});
    }
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connectWs, delay);
  }

  function handleFrame(frame) {
    switch (frame && frame.type) {
      case 'event':
        handleEnvelope(frame.envelope);
        break;
      case 'resync':
        scheduleListRefresh();
        if (state.currentId && !state.loading) {
          catchUp().then(sendWatch);
        }
        break;
      case 'error':
        flash((frame.error && frame.error.message) || 'The live connection reported an error.', 'error');
        break;
      default:
        break;
    }
  }

  function handleEnvelope(env) {
    if (!env || !env.event) return;
    const ev = env.event;
    for (const fn of hooks.listeners) {
      try {
        fn(env);
      } catch {
        /* a listener's failure must not stop the inbox */
      }
    }
    if (ev.type === 'typing') {
      if (env.conversation_id === state.currentId) showTyping(ev);
      return;
    }
    foldIntoList(env);
    scheduleListRefresh();
    if (ev.type === 'conversation_opened' && env.conversation_id !== state.currentId) {
      const name = ev.contact && ev.contact.display_name ? String(ev.contact.display_name) : 'a visitor';
      announce(`New conversation from ${name} on ${channelLabel(ev.channel)}`);
    }
    if (env.conversation_id !== state.currentId || state.loading) return;
    if (env.seq <= state.lastSeq) return;
    ingestOrCatchUp([env]);
  }

  // ---------------------------------------------------------------- view switching & keyboard

  function setView(view) {
    if (!['unassigned', 'mine', 'all'].includes(view)) return;
    state.view = view;
    for (const b of document.querySelectorAll('.view-tabs button')) {
      b.setAttribute('aria-pressed', String(b.dataset.view === view));
    }
    try {
      localStorage.setItem('switchboard.inbox.view', view);
    } catch {
      /* storage may be unavailable */
    }
    loadList().catch(showError);
  }

  function moveSelection(step) {
    const list = state.conversations;
    if (!list.length) return;
    let i = list.findIndex((c) => c.id === state.currentId);
    i = i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + step));
    const id = list[i].id;
    openConversation(id);
    const btn = document.querySelector(`.conversation-item[data-id="${CSS.escape(id)}"] > button`);
    if (btn) btn.focus();
  }

  function isTextTarget(t) {
    return t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  }

  function bindUi() {
    for (const b of document.querySelectorAll('.view-tabs button')) {
      b.addEventListener('click', () => setView(b.dataset.view));
    }
    $('status-filter').addEventListener('change', (e) => {
      state.status = e.target.value;
      loadList().catch(showError);
    });

    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      send('reply');
    });
    $('send-note').addEventListener('click', () => send('note'));
    $('reply-text').addEventListener('input', () => {
      if ($('reply-text').value.trim()) agentTyping();
      else stopAgentTyping();
    });
    $('reply-text').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) {
        if (e.ctrlKey || e.metaKey) {
          e.preventDefault();
          send('note');
        } else if (!e.shiftKey && !e.altKey) {
          e.preventDefault();
          send('reply');
        }
      } else if (e.key === 'Escape') {
        e.preventDefault();
        const btn = document.querySelector('.conversation-item[aria-current="true"] > button');
        (btn || $('timeline')).focus();
      }
    });

    $('assign-self').addEventListener('click', () => action('assign', {}, 'Assigned to you.'));
    $('close-conversation').addEventListener('click', () => action('close', { disposition: $('disposition').value }, 'Conversation closed.'));
    $('reopen').addEventListener('click', () => action('reopen', {}, 'Conversation reopened.'));

    $('logout').addEventListener('click', async () => {
      try {
        await api('POST', '/api/auth/logout', {});
      } catch {
        /* leaving anyway */
      }
      location.href = '/login';
    });

    document.addEventListener('keydown', (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTextTarget(e.target)) return;
      switch (e.key) {
        case 'j':
          e.preventDefault();
          moveSelection(1);
          break;
        case 'k':
          e.preventDefault();
          moveSelection(-1);
          break;
        case 'r':
          if (!$('composer').hidden) {
            e.preventDefault();
            $('reply-text').focus();
          }
          break;
        case '1':
          setView('unassigned');
          break;
        case '2':
          setView('mine');
          break;
        case '3':
          setView('all');
          break;
        default:
          break;
      }
    });

    window.addEventListener('hashchange', () => {
      const id = idFromHash();
      if (id && id !== state.currentId) openConversation(id);
    });

    setInterval(() => {
      for (const t of document.querySelectorAll('time[data-ts]')) t.textContent = relTime(t.dataset.ts);
    }, 30000);
  }

  function idFromHash() {
    const m = /^#c=([0-9A-Za-z-]+)$/.exec(location.hash);
    return m ? m[1] : null;
  }

  // ---------------------------------------------------------------- hooks for routing.js

  const hooks = {
    listeners: [],
    api: (...args) => api(...args),
    me: () => state.me,
    open: (id) => openConversation(id, { focusComposer: true }),
    currentId: () => state.currentId,
    current: () => state.current,
    flash: (text, kind) => flash(text, kind),
    agentName: (id) => agentName(id),
    ready: false,
  };
  window.SwitchboardInbox = hooks;

  // ---------------------------------------------------------------- start

  async function init() {
    bindUi();
    try {
      await loadMe();
    } catch (e) {
      if (e.status !== 401) {
        flash(`Could not load your account: ${e.message}`, 'error');
      }
      return;
    }
    if (state.me.role === 'knowledge_manager') {
      // Knowledge managers work on the knowledge base, not in conversations.
      location.replace('/kb');
      return;
    }
    $('user-name').textContent = state.me.name || state.me.email || '';
    $('user-role').textContent = String(state.me.role || '').replace(/_/g, ' ');
    $('admin-link').hidden = state.me.role !== 'admin';

    let saved = null;
    try {
      saved = localStorage.getItem('switchboard.inbox.view');
    } catch {
      saved = null;
    }
    if (['unassigned', 'mine', 'all'].includes(saved)) state.view = saved;
    for (const b of document.querySelectorAll('.view-tabs button')) {
      b.setAttribute('aria-pressed', String(b.dataset.view === state.view));
    }

    connectWs();
    // Scripts loaded after this one may not have run yet: they check
    // `hooks.ready` as well as listening for the event.
    hooks.ready = true;
    document.dispatchEvent(new CustomEvent('switchboard:ready'));
    await Promise.all([loadDirectory().catch(showError), loadList().catch(showError)]);
    const fromHash = idFromHash();
    if (fromHash) openConversation(fromHash);
  }

  init();

  // ---------------------------------------------------------------- sign-in page

  function initLogin() {
    const params = new URLSearchParams(location.search);
    if (params.get('error')) {
      const msg = document.getElementById('login-error');
      if (msg) msg.hidden = false;
      const email = document.getElementById('email');
      if (email) {
        email.setAttribute('aria-invalid', 'true');
        email.focus();
        email.select();
      }
    }
    // Already signed in? Go straight to the inbox.
    fetch('/api/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then((r) => {
        if (r.ok) location.replace('/inbox');
      })
      .catch(() => {});
  }
})();
