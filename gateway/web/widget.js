/*
 * Switchboard web chat widget.
 *
 * Embed with:  <script src="https://your-switchboard-host/widget.js" defer></script>
 * Optional attributes on that tag: data-title="…" (panel heading), data-greeting="…".
 *
 * The widget talks to the server the script was loaded from. It keeps the conversation
 * id, its token, the last event seq and an outbox of unacknowledged messages in
 * localStorage ("switchboard.chat"), so a reload resumes the conversation and a
 * message typed while offline is delivered once the connection is back.
 * Message text is only ever written with textContent.
 */
(() => {
  'use strict';

  if (window.SwitchboardChat) return;

  const script = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  const scriptUrl = new URL((script && script.src) || '/widget.js', location.href);
  const ORIGIN = scriptUrl.origin;
  const WS_URL = `${ORIGIN.replace(/^http/i, 'ws')}/api/webchat/ws`;
  const KEY = 'switchboard.chat';
  const MAX_LEN = 4000;
  const TITLE = (script && script.dataset.title) || 'Chat with us';
  const GREETING =
    (script && script.dataset.greeting) || 'Hi! Send us a message and someone from our team will answer right here.';

  // ------------------------------------------------------------ storage

  function readStore() {
    let s = null;
    try {
      s = JSON.parse(localStorage.getItem(KEY) || 'null');
    } catch {
      s = null;
    }
    if (!s || typeof s !== 'object') s = {};
    if (s.origin && s.origin !== ORIGIN) s = {}; // a conversation on another server is not ours
    if (!Array.isArray(s.outbox)) s.outbox = [];
    if (typeof s.lastSeq !== 'number') s.lastSeq = 0;
    return s;
  }

  let memoryStore = null; // used when localStorage is unavailable (private modes, blocked storage)

  function load() {
    return memoryStore ? memoryStore : readStore();
  }

  // Read-modify-write, so two tabs of the same site do not overwrite each other's outbox.
  function update(fn) {
    const s = load();
    fn(s);
    s.origin = ORIGIN;
    try {
      localStorage.setItem(KEY, JSON.stringify(s));
    } catch {
      memoryStore = s;
    }
    return s;
  }

  // ------------------------------------------------------------ helpers

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = String(v);
      else if (k in node && typeof node[k] !== 'function' && !k.startsWith('aria') && !k.startsWith('data')) node[k] = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function clock(iso) {
    const t = iso ? Date.parse(iso) : Date.now();
    if (!Number.isFinite(t)) return '';
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // ------------------------------------------------------------ styles (scoped to the widget root)

  const CSS_TEXT = `
#sb-chat-root{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2933;text-align:left}
#sb-chat-root *,#sb-chat-root *::before,#sb-chat-root *::after{box-sizing:border-box}
#sb-chat-root [hidden]{display:none!important}
#sb-chat-root :focus-visible{outline:3px solid #1a5fd0;outline-offset:2px}
#sb-chat-root button{font:inherit;cursor:pointer;margin:0}
#sb-chat-launcher{display:inline-flex;align-items:center;gap:8px;padding:12px 18px;border:0;border-radius:999px;background:#2c6a8a;color:#fff;font-weight:600;box-shadow:0 4px 14px rgba(20,40,60,.25)}
#sb-chat-launcher:hover{background:#1f5470}
#sb-chat-root .sb-badge{min-width:20px;padding:0 6px;border-radius:999px;background:#fff;color:#1f5470;font-size:12px;line-height:20px;text-align:center}
#sb-chat-panel{position:absolute;right:0;bottom:62px;width:min(370px,calc(100vw - 40px));height:min(540px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border:1px solid #d6dce2;border-radius:12px;box-shadow:0 10px 30px rgba(20,40,60,.22);overflow:hidden}
#sb-chat-root .sb-head{display:flex;align-items:center;gap:8px;padding:10px 12px 10px 14px;background:#2c6a8a;color:#fff}
#sb-chat-root .sb-head-text{flex:1;min-width:0}
#sb-chat-root .sb-title{margin:0;font-size:16px;font-weight:600;line-height:1.3;color:#fff}
#sb-chat-status{margin:0;font-size:12px;opacity:.92;min-height:16px}
#sb-chat-root .sb-close{width:34px;height:34px;border:0;border-radius:8px;background:transparent;color:#fff;font-size:22px;line-height:1}
#sb-chat-root .sb-close:hover{background:rgba(255,255,255,.15)}
#sb-chat-root .sb-intro{padding:10px 14px;border-bottom:1px solid #e6e9ed}
#sb-chat-root .sb-intro label{display:block;margin:0 0 4px;font-size:13px;font-weight:600;color:#1f2933}
#sb-chat-name{display:block;width:100%;padding:7px 9px;border:1px solid #b9c2cb;border-radius:8px;background:#fff;color:#1f2933;font:inherit}
#sb-chat-messages{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}
#sb-chat-root .sb-greeting{margin:0 0 4px;color:#4c5763;font-size:14px}
#sb-chat-root .sb-msg{max-width:82%;padding:8px 11px;border-radius:12px;overflow-wrap:anywhere}
#sb-chat-root .sb-text{margin:0;white-space:pre-wrap}
#sb-chat-root .sb-meta{display:block;margin-top:2px;font-size:11px;opacity:.8}
#sb-chat-root .sb-from-customer{align-self:flex-end;background:#2c6a8a;color:#fff;border-bottom-right-radius:3px}
#sb-chat-root .sb-from-agent{align-self:flex-start;background:#fff;border:1px solid #dce1e6;border-bottom-left-radius:3px}
#sb-chat-root .sb-from-bot{align-self:flex-start;background:#edf5ea;border:1px solid #d3e4cd;border-bottom-left-radius:3px}
#sb-chat-root .sb-from-system{align-self:center;max-width:90%;background:transparent;font-size:12px;color:#56616d;text-align:center}
#sb-chat-root .sb-pending{opacity:.72}
#sb-chat-root .sb-failed{background:#fbeceb;color:#8d2a24;border:1px solid #e7b9b5}
#sb-chat-root .sb-system{align-self:center;max-width:90%;margin:2px 0;font-size:12px;color:#56616d;text-align:center}
#sb-chat-root .sb-link{border:0;background:none;padding:0;color:#1f5470;text-decoration:underline;font-size:12px}
#sb-chat-root .sb-human{padding:0 14px;background:#f6f7f9;text-align:right}
#sb-chat-root .sb-typing{margin:0;padding:2px 14px;min-height:20px;font-size:12px;font-style:italic;color:#56616d;background:#f6f7f9}
#sb-chat-root .sb-form{display:flex;gap:8px;align-items:flex-end;margin:0;padding:10px;border-top:1px solid #e6e9ed;background:#fff}
#sb-chat-input{flex:1;min-height:42px;max-height:120px;resize:none;padding:9px 10px;border:1px solid #b9c2cb;border-radius:8px;background:#fff;color:#1f2933;font:inherit}
#sb-chat-send{height:42px;padding:0 14px;border:0;border-radius:8px;background:#2c6a8a;color:#fff;font-weight:600}
#sb-chat-send:hover{background:#1f5470}
#sb-chat-root .sb-sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media (prefers-reduced-motion:no-preference){#sb-chat-panel{animation:sb-in .14s ease-out}@keyframes sb-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}}
`;

  function installStyles() {
    // A constructed stylesheet also works on pages whose CSP forbids inline <style>.
    try {
      if ('adoptedStyleSheets' in document && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS_TEXT);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
        return;
      }
    } catch {
      /* fall back to a style element */
    }
    const style = document.createElement('style');
    style.textContent = CSS_TEXT;
    document.head.append(style);
  }

  // ------------------------------------------------------------ DOM

  const badge = h('span', { class: 'sb-badge', 'aria-hidden': 'true', hidden: true });
  const launcherLabel = h('span', { class: 'sb-sr', text: '' });
  const launcher = h(
    'button',
    { id: 'sb-chat-launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'sb-chat-panel' },
    document.createTextNode('Chat with us'),
    badge,
    launcherLabel,
  );

  const statusEl = h('p', { id: 'sb-chat-status', role: 'status' });
  const closeBtn = h('button', { class: 'sb-close', type: 'button', 'aria-label': 'Close chat', title: 'Close (Esc)' }, document.createTextNode('×'));
  const head = h(
    'div',
    { class: 'sb-head' },
    h('div', { class: 'sb-head-text' }, h('h2', { class: 'sb-title', id: 'sb-chat-title', text: TITLE }), statusEl),
    closeBtn,
  );

  const nameInput = h('input', { id: 'sb-chat-name', type: 'text', autocomplete: 'name', maxLength: 80, placeholder: 'e.g. Ann' });
  const intro = h('div', { class: 'sb-intro' }, h('label', { for: 'sb-chat-name', text: 'Your name (optional)' }), nameInput);

  const messages = h(
    'div',
    { id: 'sb-chat-messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages', tabindex: '0' },
    h('p', { class: 'sb-greeting', text: GREETING }),
  );
  const typingEl = h('p', { class: 'sb-typing', 'aria-live': 'polite' });
  const queueLine = h('p', { class: 'sb-system sb-queue', id: 'sb-chat-queue', role: 'status', hidden: true });
  const humanBtn = h('button', { class: 'sb-link', type: 'button', id: 'sb-chat-human', text: 'Talk to a person' });

  const input = h('textarea', {
    id: 'sb-chat-input',
    rows: 1,
    maxLength: MAX_LEN,
    placeholder: 'Type your message…',
    'aria-describedby': 'sb-chat-hint',
  });
  const sendBtn = h('button', { id: 'sb-chat-send', type: 'submit', text: 'Send' });
  const form = h(
    'form',
    { class: 'sb-form', novalidate: true },
    h('label', { for: 'sb-chat-input', class: 'sb-sr', text: 'Message' }),
    input,
    sendBtn,
    h('span', { id: 'sb-chat-hint', class: 'sb-sr', text: 'Enter sends, Shift+Enter adds a new line, Escape closes the chat.' }),
  );

  const panel = h(
    'section',
    { id: 'sb-chat-panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'sb-chat-title', hidden: true },
    head,
    intro,
    messages,
    typingEl,
    h('div', { class: 'sb-human' }, humanBtn),
    form,
  );

  const root = h('div', { id: 'sb-chat-root', class: 'sb-root' }, panel, launcher);

  // ------------------------------------------------------------ state

  let ws = null;
  let wsReady = false;
  let everReady = false;
  let backoff = 500;
  let reconnectTimer = null;
  let creating = false;
  let shownSeq = 0; // highest seq rendered on this page
  let typingActive = false;
  let typingTimer = null;
  let remoteTypingTimer = null;
  let unread = 0;

  function nextDelay() {
    const d = backoff;
    backoff = Math.min(backoff * 2, 5000);
    return d;
  }

  function setStatus(text) {
    if (statusEl.textContent !== text) statusEl.textContent = text;
  }

  function isOpen() {
    return !panel.hidden;
  }

  function scrollToEnd(force) {
    const near = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 90;
    if (force || near) messages.scrollTop = messages.scrollHeight;
  }

  function setUnread(n) {
    unread = n;
    badge.hidden = n === 0;
    badge.textContent = n ? String(n) : '';
    launcherLabel.textContent = n ? `, ${n} new ${n === 1 ? 'message' : 'messages'}` : '';
  }

  // ------------------------------------------------------------ rendering

  function firstUnconfirmed() {
    return messages.querySelector('.sb-msg[data-client-msg-id]:not([data-seq])');
  }

  // Confirmed events stay in seq order; bubbles still waiting for their event stay after them.
  function insertConfirmed(node) {
    messages.insertBefore(node, firstUnconfirmed());
  }

  function bubble(kind, text, metaText) {
    const cls = kind === 'customer' ? 'sb-from-customer' : kind === 'bot' ? 'sb-from-bot' : kind === 'system' ? 'sb-from-system' : 'sb-from-agent';
    const who = kind === 'customer' ? 'You' : kind === 'bot' ? 'Assistant' : 'Agent';
    return h(
      'div',
      { class: `sb-msg ${cls}` },
      h('span', { class: 'sb-sr', text: `${who}: ` }),
      h('p', { class: 'sb-text', text }),
      h('span', { class: 'sb-meta', text: metaText }),
    );
  }

  function setMeta(node, text) {
    const meta = node.querySelector('.sb-meta');
    if (meta) meta.textContent = text;
  }

  function renderPending(item) {
    if (messages.querySelector(`[data-client-msg-id="${CSS.escape(item.client_msg_id)}"]`)) return;
    const node = bubble('customer', item.text, 'Sending…');
    node.classList.add('sb-pending');
    node.dataset.clientMsgId = item.client_msg_id;
    messages.append(node);
  }

  // The customer asks for a person: the conversation is queued for an agent.
  async function askForHuman() {
    const st = load();
    if (!st.conversation_id) {
      await ensureConversation();
    }
    const cur = load();
    if (!cur.conversation_id) return;
    humanBtn.disabled = true;
    try {
      const res = await fetch(`${ORIGIN}/api/webchat/conversations/${encodeURIComponent(cur.conversation_id)}/handoff`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${cur.token}` },
        body: '{}',
        credentials: 'omit',
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      humanBtn.hidden = true;
      queueLine.textContent = 'Connecting you with an agent…';
      queueLine.hidden = false;
      messages.append(queueLine);
      scrollToEnd(true);
    } catch (e) {
      setStatus(`Could not reach an agent: ${e.message}. Please try again.`);
    } finally {
      humanBtn.disabled = false;
    }
  }

  function systemLine(text) {
    return h('p', { class: 'sb-system', text });
  }

  function handleEvent(env) {
    if (!env || !env.event) return;
    const ev = env.event;
    if (ev.type === 'typing') {
      showRemoteTyping(ev);
      return;
    }
    const seq = Number(env.seq) || 0;
    if (seq <= shownSeq) return; // already shown: never twice
    shownSeq = seq;
    const open = isOpen();
    const before = update((s) => {
      s.lastSeq = Math.max(s.lastSeq || 0, seq);
      if (open) s.seenSeq = Math.max(s.seenSeq || 0, seq);
    });
    const unseen = !open && seq > (before.seenSeq || 0);

    let node = null;
    if (ev.type === 'message_added') {
      const kind = (ev.from && ev.from.kind) || 'agent';
      const cid = ev.client_msg_id || null;
      let placeholder = null;
      if (kind === 'customer') {
        if (cid) placeholder = messages.querySelector(`.sb-msg[data-client-msg-id="${CSS.escape(cid)}"]:not([data-seq])`);
        if (!placeholder) placeholder = messages.querySelector(`.sb-msg[data-ack-seq="${seq}"]:not([data-seq])`);
        if (cid) dropFromOutbox(cid);
      }
      node = bubble(kind, ev.text || '', `${kind === 'customer' ? 'You' : kind === 'bot' ? 'Assistant' : 'Agent'} · ${clock(env.at)}`);
      if (cid) node.dataset.clientMsgId = cid;
      if (placeholder) placeholder.remove();
      if (kind === 'system') {
        queueLine.hidden = true;
        humanBtn.hidden = true;
      }
      if (kind !== 'customer') {
        hideRemoteTyping();
        if (unseen) setUnread(unread + 1);
      }
    } else if (ev.type === 'conversation_closed') {
      node = systemLine('This conversation was closed. Thank you for chatting with us! Write again any time, or');
      const again = h('button', { class: 'sb-link', type: 'button', id: 'sb-chat-new', text: 'start a new conversation' });
      again.addEventListener('click', startOver);
      node.append(document.createTextNode(' '), again);
    } else if (ev.type === 'conversation_reopened') {
      node = systemLine('The conversation was reopened.');
    } else if (ev.type === 'assigned') {
      node = systemLine('An agent joined the conversation.');
      queueLine.hidden = true;
      humanBtn.hidden = true;
    } else if (ev.type === 'queued') {
      // One line, updated in place as the position and wait change.
      const pos = ev.position ? `You are number ${ev.position} in line.` : 'You are in line for an agent.';
      const wait = ev.ewt_secs != null ? ` Expected wait: about ${Math.max(1, Math.round(ev.ewt_secs / 60))} min.` : '';
      queueLine.textContent = pos + wait;
      queueLine.hidden = false;
      humanBtn.hidden = true;
      messages.append(queueLine);
      scrollToEnd(false);
    }
    if (node) {
      node.dataset.seq = String(seq);
      insertConfirmed(node);
      scrollToEnd(false);
    }
  }

  function showRemoteTyping(ev) {
    if (!ev.by || ev.by.kind === 'customer') return;
    clearTimeout(remoteTypingTimer);
    if (ev.active) {
      typingEl.textContent = ev.by.kind === 'bot' ? 'Assistant is typing…' : 'Agent is typing…';
      remoteTypingTimer = setTimeout(hideRemoteTyping, 8000);
    } else {
      hideRemoteTyping();
    }
  }

  function hideRemoteTyping() {
    clearTimeout(remoteTypingTimer);
    typingEl.textContent = '';
  }

  // ------------------------------------------------------------ outbox

  function dropFromOutbox(cid) {
    update((s) => {
      s.outbox = s.outbox.filter((m) => m.client_msg_id !== cid);
    });
  }

  function sendFrame(frame) {
    if (ws && wsReady && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function flushOutbox() {
    for (const m of load().outbox) {
      renderPending(m);
      sendFrame({ type: 'message', text: m.text, client_msg_id: m.client_msg_id });
    }
  }

  function onAck(frame) {
    const cid = frame.client_msg_id;
    if (!cid) return;
    dropFromOutbox(cid);
    const node = messages.querySelector(`.sb-msg[data-client-msg-id="${CSS.escape(cid)}"]:not([data-seq])`);
    if (!node) return;
    const seq = Number(frame.seq) || 0;
    if (seq && seq <= shownSeq) {
      node.remove(); // its event is already on screen
      return;
    }
    node.classList.remove('sb-pending');
    if (seq) node.dataset.ackSeq = String(seq);
    setMeta(node, 'Sent');
  }

  function markFailed(cid, reason) {
    dropFromOutbox(cid);
    const node = messages.querySelector(`.sb-msg[data-client-msg-id="${CSS.escape(cid)}"]:not([data-seq])`);
    if (node) {
      node.classList.remove('sb-pending');
      node.classList.add('sb-failed');
      node.removeAttribute('data-client-msg-id');
      setMeta(node, `Not delivered: ${reason}`);
    }
  }

  // ------------------------------------------------------------ connection

  async function ensureConversation() {
    if (load().conversation_id || creating) return;
    creating = true;
    clearTimeout(reconnectTimer);
    setStatus(everReady ? 'Reconnecting…' : 'Connecting…');
    const name = nameInput.value.trim();
    const body = { locale: navigator.language || 'en' };
    if (name) body.display_name = name;
    let retry = true;
    try {
      const res = await fetch(`${ORIGIN}/api/webchat/conversations`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
      });
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const message = (data && data.error && data.error.message) || `HTTP ${res.status}`;
        retry = res.status >= 500 || res.status === 429 || res.status === 408;
        throw new Error(message);
      }
      update((s) => {
        s.conversation_id = data.conversation_id;
        s.token = data.token;
        s.contact_id = data.contact_id;
        s.lastSeq = 0;
        if (name) s.name = name;
      });
      shownSeq = 0;
      creating = false;
      intro.hidden = true;
      connect();
    } catch (e) {
      creating = false;
      if (retry) {
        setStatus('Reconnecting…');
        reconnectTimer = setTimeout(ensureConversation, nextDelay());
      } else {
        setStatus(`Could not start the chat: ${e.message}`);
      }
    }
  }

  function connect() {
    const s = load();
    if (!s.conversation_id) return;
    if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) return;
    clearTimeout(reconnectTimer);
    setStatus(everReady ? 'Reconnecting…' : 'Connecting…');
    let sock;
    try {
      sock = new WebSocket(WS_URL);
    } catch {
      reconnectTimer = setTimeout(connect, nextDelay());
      return;
    }
    ws = sock;
    wsReady = false;

    sock.addEventListener('open', () => {
      const cur = load();
      sock.send(JSON.stringify({ type: 'hello', conversation_id: cur.conversation_id, token: cur.token, after: shownSeq }));
    });
    sock.addEventListener('message', (m) => {
      if (ws !== sock) return;
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      switch (frame && frame.type) {
        case 'ready':
          wsReady = true;
          everReady = true;
          backoff = 500;
          setStatus('Connected');
          flushOutbox();
          break;
        case 'event':
          handleEvent(frame.envelope);
          break;
        case 'ack':
          onAck(frame);
          break;
        case 'nack':
          onNack(frame);
          break;
        case 'error':
          onServerError(frame.error || {});
          break;
        default:
          break;
      }
    });
    sock.addEventListener('close', () => {
      if (ws !== sock) return;
      ws = null;
      wsReady = false;
      typingActive = false;
      if (!load().conversation_id) return;
      setStatus('Reconnecting…');
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(connect, nextDelay());
    });
  }

  function onServerError(err) {
    const code = err.code || '';
    if (GONE.includes(code) && !wsReady) conversationGone();
  }

  const GONE = ['unauthenticated', 'forbidden', 'not_found', 'session_expired'];
  const REJECTED = ['validation_failed', 'payload_too_large', 'bad_request', 'invalid_json'];

  // The stored conversation is no longer usable: start a fresh one, keeping unsent messages.
  function conversationGone() {
    forgetConversation();
    messages.append(systemLine('Your previous conversation is no longer available. New messages start a new conversation.'));
    if (load().outbox.length) ensureConversation();
  }

  // The server could not store a message. Rejected ones are shown as failed; anything else
  // (e.g. the store is briefly unavailable) stays queued and is sent again shortly.
  function onNack(frame) {
    const cid = frame.client_msg_id;
    const err = frame.error || {};
    if (!cid) return;
    if (REJECTED.includes(err.code)) {
      markFailed(cid, err.message || err.code);
    } else if (GONE.includes(err.code)) {
      conversationGone();
    } else {
      setTimeout(() => {
        const m = load().outbox.find((x) => x.client_msg_id === cid);
        if (m) sendFrame({ type: 'message', text: m.text, client_msg_id: m.client_msg_id });
      }, 2000);
    }
  }

  function forgetConversation() {
    update((s) => {
      delete s.conversation_id;
      delete s.token;
      delete s.contact_id;
      s.lastSeq = 0;
    });
    shownSeq = 0;
    const sock = ws;
    ws = null;
    wsReady = false;
    if (sock) sock.close();
    clearTimeout(reconnectTimer);
    setStatus('');
    intro.hidden = false;
  }

  function startOver() {
    forgetConversation();
    for (const n of Array.from(messages.children)) {
      if (!n.classList.contains('sb-greeting') && !n.matches('.sb-msg[data-client-msg-id]:not([data-seq])')) n.remove();
    }
    input.focus();
  }

  // ------------------------------------------------------------ sending & typing

  function submit() {
    const text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    const item = { client_msg_id: uuid(), text: text.slice(0, MAX_LEN), at: new Date().toISOString() };
    update((s) => {
      s.outbox.push(item);
    });
    input.value = '';
    stopTyping();
    renderPending(item);
    scrollToEnd(true);
    if (!load().conversation_id) {
      ensureConversation();
    } else if (!sendFrame({ type: 'message', text: item.text, client_msg_id: item.client_msg_id })) {
      connect(); // flushes the outbox once ready
    }
    input.focus();
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingActive) {
      typingActive = false;
      sendFrame({ type: 'typing', active: false });
    }
  }

  function onInput() {
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    if (!typingActive && sendFrame({ type: 'typing', active: true })) typingActive = true;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  }

  // ------------------------------------------------------------ open / close

  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    setUnread(0);
    scrollToEnd(true);
    const s = update((st) => {
      st.seenSeq = Math.max(st.seenSeq || 0, shownSeq);
    });
    if (!s.conversation_id && !nameInput.value && !s.outbox.length) nameInput.focus();
    else input.focus();
    if (s.conversation_id) connect();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    stopTyping();
    launcher.focus();
  }

  // ------------------------------------------------------------ start

  function start() {
    installStyles();
    document.body.append(root);

    const s = load();
    intro.hidden = Boolean(s.conversation_id);
    if (s.name) nameInput.value = s.name;
    for (const m of s.outbox) renderPending(m);

    launcher.addEventListener('click', () => (isOpen() ? closePanel() : openPanel()));
    closeBtn.addEventListener('click', closePanel);
    humanBtn.addEventListener('click', askForHuman);
    panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        closePanel();
      }
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    input.addEventListener('input', onInput);
    nameInput.addEventListener('change', () => {
      update((st) => {
        st.name = nameInput.value.trim();
      });
    });
    nameInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        input.focus();
      }
    });
    // Another tab of this site started (or resumed) the conversation: follow it here too.
    window.addEventListener('storage', (e) => {
      if (e.key !== KEY) return;
      if (load().conversation_id && !ws) {
        intro.hidden = true;
        connect();
      }
    });
    window.addEventListener('online', () => {
      backoff = 500;
      if (load().conversation_id) connect();
      else if (load().outbox.length) ensureConversation();
    });

    // Resume an existing conversation (and deliver anything left in the outbox).
    if (s.conversation_id) connect();
    else if (s.outbox.length) ensureConversation();
  }

  window.SwitchboardChat = { open: () => (isOpen() ? undefined : openPanel()), close: () => (isOpen() ? closePanel() : undefined) };

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true });
})();
