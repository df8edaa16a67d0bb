// Routing in the agent inbox: presence, offers with a countdown, wrap-up and
// transfers. Offers arrive live as `offered` events on the agent socket and
// are re-read from /api/routing/me on load and every few seconds, so a
// reconnect or a second tab never misses one.
//
// Safety rule: text from customers or users is only set with textContent.
(() => {
  'use strict';
  if (document.body.dataset.page !== 'inbox') return;

  const $ = (id) => document.getElementById(id);
  const { el } = window.Switchboard;
  const offers = new Map(); // offer id -> { conversation_id, expires_at, queue, preview, name }
  let hooks = null;
  let me = null;
  let wrapUpContacts = [];

  let started = false;

  function start() {
    if (started) return;
    started = true;
    hooks = window.SwitchboardInbox;
    me = hooks.me();
    if (!me) return;
    const works = ['agent', 'supervisor', 'admin'].includes(me.role);
    $('supervisor-link').hidden = !['supervisor', 'admin', 'analyst'].includes(me.role);
    $('routing-link').hidden = me.role !== 'admin';
    $('recordings-link').hidden = false;
    if (!works) {
      $('transfer-group').hidden = true;
      return;
    }
    $('presence-control').hidden = false;
    hooks.listeners.push(onEnvelope);
    bind();
    refresh();
    loadQueues();
    setInterval(refresh, 3000);
    setInterval(renderOffers, 1000);
  }

  function bind() {
    $('presence').addEventListener('change', async (e) => {
      const state = e.target.value;
      const body = { state };
      if (state === 'away') body.reason = 'away';
      try {
        await hooks.api('PUT', '/api/routing/me/presence', body);
        hooks.flash(`Status: ${state}.`);
      } catch (err) {
        hooks.flash(err.message, 'error');
      }
    });
    $('wrap-up-done').addEventListener('click', async () => {
      for (const id of wrapUpContacts) {
        try {
          await hooks.api('POST', `/api/conversations/${encodeURIComponent(id)}/wrap-up-done`, {});
        } catch (err) {
          hooks.flash(err.message, 'error');
        }
      }
      setTimeout(refresh, 600);
    });
    $('transfer').addEventListener('click', async () => {
      const id = hooks.currentId();
      const target = $('transfer-target').value;
      if (!id || !target) return;
      const body = target.startsWith('queue:') ? { queue: target.slice(6) } : { agent_id: target.slice(6) };
      try {
        await hooks.api('POST', `/api/conversations/${encodeURIComponent(id)}/transfer`, body);
        hooks.flash('Transferred. The history goes with it.');
      } catch (err) {
        hooks.flash(err.message, 'error');
      }
    });
    document.addEventListener('keydown', (e) => {
      const t = e.target;
      if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const first = oldestOffer();
      if (!first) return;
      if (e.key === 'a') {
        e.preventDefault();
        answer(first, true);
      } else if (e.key === 'd') {
        e.preventDefault();
        answer(first, false);
      }
    });
  }

  async function loadQueues() {
    const sel = $('transfer-target');
    sel.replaceChildren();
    try {
      const { queues } = await hooks.api('GET', '/api/routing/queues');
      const group = document.createElement('optgroup');
      group.label = 'Queues';
      for (const q of queues) {
        const o = el('option', null, `Queue: ${q.id}`);
        o.value = `queue:${q.id}`;
        group.append(o);
      }
      sel.append(group);
      const dir = await hooks.api('GET', '/api/directory');
      const people = document.createElement('optgroup');
      people.label = 'Agents';
      for (const u of dir.users || []) {
        if (me && u.id === me.id) continue;
        const o = el('option', null, u.name);
        o.value = `agent:${u.id}`;
        people.append(o);
      }
      sel.append(people);
    } catch {
      /* transfer stays empty; the rest of the inbox works */
    }
  }

  async function refresh() {
    let data;
    try {
      data = await hooks.api('GET', '/api/routing/me');
    } catch {
      return;
    }
    const p = data.presence || {};
    if (document.activeElement !== $('presence')) $('presence').value = p.state || 'offline';
    const live = new Set();
    for (const o of data.offers || []) {
      live.add(o.offer);
      if (!offers.has(o.offer)) {
        offers.set(o.offer, {
          offer: o.offer,
          conversation_id: o.conversation_id,
          expires_at: Date.parse(o.expires_at),
          queue: o.queue,
          preview: (o.conversation && o.conversation.last_message_preview) || '',
          name: (o.conversation && o.conversation.contact && o.conversation.contact.display_name) || 'A customer',
        });
      }
    }
    for (const k of [...offers.keys()]) if (!live.has(k)) offers.delete(k);
    const r = data.router;
    const activity = r ? String(r.activity || '').replace(/_/g, ' ') : '';
    const load = r ? ` · chats ${r.chat_load}/${(r.capacity && r.capacity.chat) || 0}` : '';
    $('activity').textContent = activity ? `${activity}${load}` : '';
    wrapUpContacts = r && r.activity === 'wrap_up' ? r.contacts || [] : [];
    $('wrap-up-done').hidden = wrapUpContacts.length === 0;
    renderOffers();
  }

  function onEnvelope(env) {
    const ev = env.event;
    if (!me) return;
    if (ev.type === 'offered' && ev.agent === me.id) {
      offers.set(ev.offer, {
        offer: ev.offer,
        conversation_id: env.conversation_id,
        expires_at: Date.parse(ev.expires_at),
        queue: ev.queue,
        preview: '',
        name: 'A customer',
      });
      renderOffers();
      refresh();
      const region = $('offers');
      const btn = region.querySelector('button.accept');
      if (btn && !['INPUT', 'TEXTAREA'].includes((document.activeElement || {}).tagName)) btn.focus();
    } else if ((ev.type === 'offer_withdrawn' || ev.type === 'offer_answered') && offers.has(ev.offer)) {
      offers.delete(ev.offer);
      renderOffers();
    } else if (ev.type === 'assigned' && ev.agent === me.id && ev.by && ev.by.kind === 'system') {
      hooks.open(env.conversation_id);
      setTimeout(refresh, 300);
    } else if (ev.type === 'conversation_closed') {
      setTimeout(refresh, 600);
    }
  }

  function oldestOffer() {
    let best = null;
    for (const o of offers.values()) if (!best || o.expires_at < best.expires_at) best = o;
    return best;
  }

  async function answer(o, accept) {
    offers.delete(o.offer);
    renderOffers();
    try {
      await hooks.api('POST', `/api/conversations/${encodeURIComponent(o.conversation_id)}/offers/${encodeURIComponent(o.offer)}/${accept ? 'accept' : 'decline'}`, {});
      hooks.flash(accept ? 'Accepted. Opening the conversation…' : 'Declined. It goes to the next agent.');
    } catch (err) {
      hooks.flash(err.message, 'error');
      refresh();
    }
  }

  function renderOffers() {
    const region = $('offers');
    const now = Date.now();
    for (const [k, o] of offers) if (o.expires_at + 2000 < now) offers.delete(k);
    if (!offers.size) {
      region.hidden = true;
      region.replaceChildren();
      return;
    }
    region.hidden = false;
    const existing = new Map([...region.querySelectorAll('.offer')].map((n) => [n.dataset.offer, n]));
    for (const o of [...offers.values()].sort((a, b) => a.expires_at - b.expires_at)) {
      let card = existing.get(o.offer);
      const secs = Math.max(0, Math.ceil((o.expires_at - now) / 1000));
      if (!card) {
        card = el('div', 'offer');
        card.dataset.offer = o.offer;
        card.setAttribute('role', 'group');
        card.setAttribute('aria-label', `Offer from ${o.name}`);
        const title = el('strong', null, `${o.name} is waiting${o.queue ? ` in ${o.queue}` : ''}`);
        const preview = el('span', 'offer-preview', o.preview);
        const countdown = el('span', 'countdown');
        const acc = el('button', 'primary accept', 'Accept');
        acc.type = 'button';
        acc.addEventListener('click', () => answer(o, true));
        const dec = el('button', 'decline', 'Decline');
        dec.type = 'button';
        dec.addEventListener('click', () => answer(o, false));
        card.append(title, preview, countdown, acc, dec);
        region.append(card);
      }
      existing.delete(o.offer);
      card.querySelector('.countdown').textContent = `${secs} s left`;
    }
    for (const stale of existing.values()) stale.remove();
  }

  // The inbox may have loaded the account before this script ran (its fetch
  // can finish while this file is still downloading), so start now if it is
  // ready, or when it says so.
  if (window.SwitchboardInbox && window.SwitchboardInbox.ready) start();
  else document.addEventListener('switchboard:ready', start);
})();
