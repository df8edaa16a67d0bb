// Knowledge gaps: GET /api/kb/gaps, rendered as a table. Text from customers
// is only set with textContent.
(() => {
  'use strict';
  if (document.body.dataset.page !== 'gaps') return;
  const $ = (id) => document.getElementById(id);
  const { el, client } = window.Switchboard;
  let csrf = '';
  const api = client({ csrf: () => csrf, refresh: loadMe });

  async function loadMe() {
    const data = await api('GET', '/api/me');
    csrf = data.csrf_token;
    return data.user;
  }

  async function load() {
    const days = $('days').value;
    try {
      const data = await api('GET', `/api/kb/gaps?days=${encodeURIComponent(days)}`);
      $('gaps-summary').textContent = `${data.gaps.length} unanswered question${data.gaps.length === 1 ? '' : 's'} in ${data.turns} virtual-agent turns.`;
      const rows = data.gaps.map((g) => {
        const tr = el('tr');
        const convs = el('td');
        for (const c of g.conversations) {
          const a = el('a', null, c.slice(0, 8));
          a.href = `/inbox#c=${c}`;
          convs.append(a, document.createTextNode(' '));
        }
        tr.append(
          el('td', null, g.question),
          el('td', 'num', g.count),
          el('td', null, g.outcomes.map((o) => o.replace(/_/g, ' ')).join(', ')),
          el('td', null, g.languages.join(', ')),
          el('td', null, g.nearest || '—'),
          convs,
        );
        return tr;
      });
      if (!rows.length) {
        const tr = el('tr');
        const td = el('td', 'muted', 'No unanswered questions in this period.');
        td.colSpan = 6;
        tr.append(td);
        rows.push(tr);
      }
      $('gaps-body').replaceChildren(...rows);
    } catch (e) {
      $('flash').className = 'flash error';
      $('flash').textContent = e.message;
      $('gaps-body').replaceChildren();
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
    $('days').addEventListener('change', load);
    load();
  })();
})();
