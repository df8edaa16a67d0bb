// Supervisor view: the routing leader's live snapshot, refreshed every
// second, with actions to change an agent's presence and to (re)assign a
// conversation. Text from users is only set with textContent.
(() => {
  'use strict';
  if (document.body.dataset.page !== 'supervisor') return;
  const $ = (id) => document.getElementById(id);
  const { el, client } = window.Switchboard;
  let csrf = '';
  const api = client({ csrf: () => csrf, refresh: loadMe });
  let agents = [];
  let busy = false;

  async function loadMe() {
    const data = await api('GET', '/api/me');
    csrf = data.csrf_token;
    return data.user;
  }

  // Durations come as seconds, or as a serialised Rust Duration ({secs, nanos}).
  function dur(v) {
    if (v == null) return '—';
    const secs = typeof v === 'object' ? Number(v.secs) + Number(v.nanos || 0) / 1e9 : Number(v);
    if (!Number.isFinite(secs)) return '—';
    const s = Math.round(secs);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  const pct = (x) => (x == null ? '—' : `${Math.round(x * 100)} %`);
  const presenceName = (p) => (p ? (p.state === 'away' ? `away (${p.reason})` : p.state) : 'offline');
  function flash(text, kind) {
    const f = $('flash');
    f.className = `flash ${kind || ''}`;
    f.textContent = text;
  }
  function cell(text, cls) {
    return el('td', cls, text);
  }

  function render(doc) {
    agents = doc.agents || [];
    const queues = doc.queues || [];
    const waitingTotal = queues.reduce((n, q) => n + q.queue.waiting + q.queue.offered, 0);
    const longest = Math.max(0, ...queues.map((q) => q.queue.longest_wait || 0));
    const answered = queues.reduce((n, q) => n + q.queue.counters.answered, 0);
    const inSla = queues.reduce((n, q) => n + q.queue.counters.answered_in_threshold, 0);
    const avail = agents.filter((a) => a.presence && a.presence.state === 'available').length;
    const totals = [
      ['Waiting', waitingTotal],
      ['Longest wait', dur(longest)],
      ['Answered', answered],
      ['Service level', answered ? pct(inSla / answered) : '—'],
      ['Agents available', `${avail} / ${agents.length}`],
    ];
    $('totals').replaceChildren(...totals.map(([k, v]) => {
      const d = el('div', 'stat');
      d.append(el('span', 'muted', k), el('b', null, v));
      return d;
    }));

    $('queues-body').replaceChildren(...queues.map(({ queue: q }) => {
      const tr = el('tr');
      tr.append(
        cell(`${q.id} (${q.kind}, ${String(q.strategy).replace(/_/g, ' ')})`),
        cell(q.waiting, 'num'), cell(q.offered, 'num'), cell(dur(q.longest_wait), 'num'),
        cell(q.counters.answered, 'num'),
        cell(`${pct(q.service_level)} (target ${pct(q.sla_target.fraction)} in ${dur(q.sla_target.threshold)})`),
        cell(`${q.agents_available} / ${q.agents_eligible}`, 'num'),
        cell(dur(q.forecast && q.forecast.average_speed_of_answer), 'num'),
      );
      return tr;
    }));

    const waiting = queues.flatMap((q) => q.waiting_contacts || []);
    const rows = waiting.map((c) => {
      const tr = el('tr');
      const link = el('a', null, String(c.contact).slice(0, 8));
      link.href = `/inbox#c=${c.contact}`;
      const td = el('td');
      td.append(link);
      tr.append(td, cell(c.queue), cell(String(c.state).replace(/_/g, ' ')), cell(dur(c.waited), 'num'), assignCell(c.contact));
      return tr;
    });
    $('waiting-body').replaceChildren(...(rows.length ? rows : [(() => {
      const tr = el('tr');
      const td = el('td', 'muted', 'Nobody is waiting.');
      td.colSpan = 5;
      tr.append(td);
      return tr;
    })()]));

    $('agents-body').replaceChildren(...agents.map((a) => {
      const tr = el('tr');
      tr.dataset.agent = a.id;
      const state = (a.presence && a.presence.state) || 'offline';
      const convs = el('td');
      for (const c of a.contacts || []) {
        const link = el('a', null, String(c).slice(0, 8));
        link.href = `/inbox#c=${c}`;
        convs.append(link, document.createTextNode(' '));
      }
      tr.append(
        cell(a.name || a.email || a.id),
        cell(presenceName(a.presence), `state-${state}`),
        cell(String(a.activity).replace(/_/g, ' ')),
        cell(dur(a.in_presence_for), 'num'),
        cell(`${a.chat_load} / ${a.capacity.chat}`, 'num'),
        cell(`${a.voice_load} / ${a.capacity.voice}`, 'num'),
        convs,
        phoneCell(a.id),
        presenceCell(a),
      );
      return tr;
    }));
  }

  // Agents' SIP phones (GET /api/phones), refreshed every 10 s: whether each
  // agent's phone is registered, and from where.
  let phones = new Map();
  async function loadPhones() {
    try {
      const data = await api('GET', '/api/phones');
      phones = new Map(((data && data.phones) || []).map((p) => [p.account.user_id, p]));
    } catch {
      /* the column then says "no SIP account"; the snapshot still renders */
    }
  }

  function phoneCell(agentId) {
    const p = phones.get(agentId);
    if (!p) return cell('no SIP account', 'phone muted');
    const regs = p.registrations || [];
    const td = cell(regs.length ? `registered (${p.account.username})` : `not registered (${p.account.username})`, regs.length ? 'phone state-available' : 'phone state-offline');
    if (regs.length) td.title = regs.map((r) => `${r.contact} from ${r.source} until ${new Date(r.expires_at).toLocaleTimeString()}`).join('\n');
    return td;
  }

  function presenceCell(a) {
    const td = el('td');
    const sel = el('select');
    sel.setAttribute('aria-label', `Set presence of ${a.name || a.id}`);
    for (const s of ['available', 'busy', 'away', 'offline']) {
      const o = el('option', null, s);
      o.value = s;
      sel.append(o);
    }
    sel.value = (a.presence && a.presence.state) || 'offline';
    sel.addEventListener('focus', () => { busy = true; });
    sel.addEventListener('blur', () => { busy = false; });
    sel.addEventListener('change', async () => {
      try {
        await api('PUT', `/api/routing/agents/${encodeURIComponent(a.id)}/presence`, { state: sel.value, reason: 'set by supervisor' });
        flash(`${a.name || 'Agent'} is now ${sel.value}.`);
      } catch (e) {
        flash(e.message, 'error');
      }
      busy = false;
    });
    td.append(sel);
    return td;
  }

  function assignCell(conversation) {
    const td = el('td');
    const sel = el('select');
    sel.setAttribute('aria-label', 'Assign this conversation to');
    sel.append(el('option', null, 'Choose…'));
    for (const a of agents) {
      const o = el('option', null, a.name || a.email || a.id);
      o.value = a.id;
      sel.append(o);
    }
    sel.addEventListener('focus', () => { busy = true; });
    sel.addEventListener('blur', () => { busy = false; });
    sel.addEventListener('change', async () => {
      if (!sel.value || sel.selectedIndex === 0) return;
      try {
        await api('POST', `/api/conversations/${encodeURIComponent(conversation)}/assign`, { agent_id: sel.value });
        flash('Assigned.');
      } catch (e) {
        flash(e.message, 'error');
      }
      busy = false;
    });
    td.append(sel);
    return td;
  }

  async function tick() {
    if (busy) return;
    try {
      const doc = await api('GET', '/api/routing/snapshot');
      const stale = doc.age_ms > 5000;
      $('stale').hidden = !stale;
      $('stale').textContent = stale ? `Routing data is ${Math.round(doc.age_ms / 1000)} s old: the routing node may be restarting.` : '';
      render(doc);
    } catch (e) {
      $('stale').hidden = false;
      $('stale').textContent = e.message;
    }
  }

  (async () => {
    try {
      const me = await loadMe();
      $('user-name').textContent = me.name || me.email;
      $('user-role').textContent = String(me.role).replace(/_/g, ' ');
    } catch {
      return;
    }
    $('logout').addEventListener('click', async () => {
      try { await api('POST', '/api/auth/logout', {}); } catch { /* leaving anyway */ }
      location.href = '/login';
    });
    await loadPhones();
    await tick();
    setInterval(tick, 1000);
    setInterval(loadPhones, 10000);
  })();
})();
