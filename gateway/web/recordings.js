// Recordings: search call recordings and voicemail, play them in the page.
// Playing fetches /api/recordings/{id}/audio, which the server audits.
// Text from the server is only set with textContent.
(() => {
  'use strict';
  if (document.body.dataset.page !== 'recordings') return;
  const $ = (id) => document.getElementById(id);
  const { el, client } = window.Switchboard;
  let csrf = '';
  const api = client({ csrf: () => csrf, refresh: loadMe });

  async function loadMe() {
    const data = await api('GET', '/api/me');
    csrf = data.csrf_token;
    return data.user;
  }
  function flash(text, kind) {
    const f = $('flash');
    f.className = `flash ${kind || ''}`;
    f.textContent = text;
  }
  function dur(ms) {
    const s = Math.round(Number(ms) / 1000);
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
  }

  function query() {
    const form = new FormData($('search'));
    const params = new URLSearchParams();
    for (const [k, v] of form.entries()) {
      const value = String(v).trim();
      if (!value) continue;
      if (k === 'from' || k === 'to') {
        const d = new Date(value);
        if (!Number.isNaN(d.getTime())) params.set(k, d.toISOString());
      } else {
        params.set(k, value);
      }
    }
    const q = params.toString();
    return q ? `/api/recordings?${q}` : '/api/recordings';
  }

  function row(r) {
    const tr = el('tr');
    tr.append(
      el('td', null, new Date(r.started_at).toLocaleString()),
      el('td', null, r.kind),
      el('td', null, r.caller),
      el('td', null, r.called),
      el('td', 'muted', r.agent || '—'),
      el('td', null, dur(r.duration_ms)),
    );
    const conv = el('td');
    const link = el('a', null, r.conversation_id.slice(0, 8));
    link.href = `/inbox#${encodeURIComponent(r.conversation_id)}`;
    conv.append(link);
    const listen = el('td');
    const play = el('button', null, 'Play');
    play.type = 'button';
    play.addEventListener('click', () => {
      const audio = el('audio');
      audio.controls = true;
      audio.preload = 'none';
      audio.src = `/api/recordings/${encodeURIComponent(r.id)}/audio`;
      audio.setAttribute('aria-label', `${r.kind} from ${r.caller}`);
      listen.replaceChildren(audio);
      audio.play().catch(() => { /* the controls remain */ });
    });
    listen.append(play);
    tr.append(conv, listen);
    return tr;
  }

  async function search() {
    try {
      const data = await api('GET', query());
      const list = data.recordings || [];
      $('results-body').replaceChildren(...(list.length
        ? list.map(row)
        : [(() => { const tr = el('tr'); const td = el('td', 'muted', 'No recordings match.'); td.colSpan = 8; tr.append(td); return tr; })()]));
      flash(`${list.length} recording${list.length === 1 ? '' : 's'}`, '');
    } catch (e) {
      flash(e.message, 'error');
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
    $('search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      search();
    });
    search();
  })();
})();
