// Routing configuration for admins: queues (skills, strategy, timers) and
// agents (skills, languages, capacity). Text from users is set as text only.
(() => {
  'use strict';
  if (document.body.dataset.page !== 'routing-admin') return;
  const $ = (id) => document.getElementById(id);
  const { el, client } = window.Switchboard;
  let csrf = '';
  const api = client({ csrf: () => csrf, refresh: loadMe });
  const STRATEGIES = ['longest_idle', 'least_occupied', 'skills_weighted', 'predictive'];

  async function loadMe() {
    const data = await api('GET', '/api/me');
    csrf = data.csrf_token;
    return data.user;
  }
  function flash(text, kind) {
    $('flash').className = `flash ${kind || ''}`;
    $('flash').textContent = text;
  }
  function input(value, label, type) {
    const i = el('input');
    i.value = value == null ? '' : String(value);
    i.setAttribute('aria-label', label);
    if (type) i.type = type;
    return i;
  }
  function parseSkills(text) {
    const out = {};
    for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [name, level] = part.split(':').map((s) => s.trim());
      out[name] = Number(level || 1);
    }
    return out;
  }
  const td = (...nodes) => {
    const c = el('td');
    c.append(...nodes);
    return c;
  };

  async function loadQueues() {
    const { queues } = await api('GET', '/api/routing/queues');
    $('queues-body').replaceChildren(...queues.map((q) => {
      const tr = el('tr');
      const skills = input(q.required_skills.map((r) => `${r.skill}:${r.min_proficiency}`).join(', '), `Required skills of ${q.id}`);
      const strategy = el('select');
      strategy.setAttribute('aria-label', `Strategy of ${q.id}`);
      for (const s of STRATEGIES) {
        const o = el('option', null, s.replace(/_/g, ' '));
        o.value = s;
        strategy.append(o);
      }
      strategy.value = (q.strategy && q.strategy.kind) || 'longest_idle';
      const timeout = input(q.offer_timeout, `Offer timeout of ${q.id}`, 'number');
      const wrap = input(q.wrap_up, `Wrap-up of ${q.id}`, 'number');
      const sla = input(q.sla.threshold, `SLA threshold of ${q.id}`, 'number');
      const save = el('button', 'primary', 'Save');
      save.type = 'button';
      save.addEventListener('click', async () => {
        const body = {
          ...q,
          required_skills: Object.entries(parseSkills(skills.value)).map(([skill, min_proficiency]) => ({ skill, min_proficiency })),
          strategy: strategy.value === q.strategy.kind ? q.strategy : { kind: strategy.value },
          offer_timeout: Number(timeout.value),
          wrap_up: Number(wrap.value),
          sla: { ...q.sla, threshold: Number(sla.value) },
        };
        try {
          await api('PUT', `/api/routing/queues/${encodeURIComponent(q.id)}`, body);
          flash(`Queue ${q.id} saved.`);
        } catch (e) {
          flash(e.message, 'error');
        }
      });
      const del = el('button', null, 'Delete');
      del.type = 'button';
      del.addEventListener('click', async () => {
        try {
          await api('DELETE', `/api/routing/queues/${encodeURIComponent(q.id)}`);
          flash(`Queue ${q.id} deleted.`);
          loadQueues();
        } catch (e) {
          flash(e.message, 'error');
        }
      });
      tr.append(el('th', null, q.id), td(skills), td(strategy), td(timeout), td(wrap), td(sla), td(save, del));
      tr.firstChild.scope = 'row';
      return tr;
    }));
  }

  async function loadAgents() {
    const { users } = await api('GET', '/api/directory');
    const rows = [];
    for (const u of users.filter((x) => ['agent', 'supervisor', 'admin'].includes(x.role))) {
      const p = await api('GET', `/api/routing/agents/${encodeURIComponent(u.id)}`);
      const tr = el('tr');
      const skills = input(Object.entries(p.skills).map(([k, v]) => `${k}:${v}`).join(', '), `Skills of ${u.name}`);
      const langs = input(p.languages.join(', '), `Languages of ${u.name}`);
      const chat = input(p.chat_capacity, `Chats at once for ${u.name}`, 'number');
      const voice = input(p.voice_capacity, `Calls at once for ${u.name}`, 'number');
      const save = el('button', 'primary', 'Save');
      save.type = 'button';
      save.addEventListener('click', async () => {
        try {
          await api('PUT', `/api/routing/agents/${encodeURIComponent(u.id)}`, {
            skills: parseSkills(skills.value),
            languages: langs.value.split(',').map((s) => s.trim()).filter(Boolean),
            teams: p.teams,
            chat_capacity: Number(chat.value),
            voice_capacity: Number(voice.value),
          });
          flash(`${u.name} saved.`);
        } catch (e) {
          flash(e.message, 'error');
        }
      });
      const name = el('th', null, u.name);
      name.scope = 'row';
      tr.append(name, td(skills), td(langs), td(chat), td(voice), td(save));
      rows.push(tr);
    }
    $('agents-body').replaceChildren(...rows);
  }

  (async () => {
    try {
      const me = await loadMe();
      $('user-name').textContent = me.name || me.email;
      $('user-role').textContent = String(me.role).replace(/_/g, ' ');
    } catch {
      return;
    }
    $('new-queue').addEventListener('submit', async (e) => {
      e.preventDefault();
      const id = $('new-queue-id').value.trim();
      try {
        await api('PUT', `/api/routing/queues/${encodeURIComponent(id)}`, { kind: 'chat' });
        $('new-queue-id').value = '';
        flash(`Queue ${id} added.`);
        loadQueues();
      } catch (err) {
        flash(err.message, 'error');
      }
    });
    try {
      await Promise.all([loadQueues(), loadAgents()]);
    } catch (e) {
      flash(e.message, 'error');
    }
  })();
})();
