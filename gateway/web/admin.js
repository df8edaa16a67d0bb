// Switchboard user administration. User-supplied text is only written with textContent.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ROLES = [
    ['agent', 'Agent'],
    ['supervisor', 'Supervisor'],
    ['knowledge_manager', 'Knowledge manager'],
    ['analyst', 'Analyst'],
    ['admin', 'Admin'],
  ];

  const state = { me: null, csrf: '', users: [], phones: new Map() };

  const { el } = window.Switchboard;
  const api = window.Switchboard.client({ csrf: () => state.csrf, refresh: () => loadMe() });

  let flashTimer = null;
  function flash(message, kind) {
    const f = $('flash');
    clearTimeout(flashTimer);
    f.className = `flash ${kind || ''}`;
    f.textContent = message;
    if (kind !== 'error') {
      flashTimer = setTimeout(() => {
        f.textContent = '';
      }, 6000);
    }
  }
  const showError = (e) => flash((e && e.message) || 'Something went wrong.', 'error');

  async function loadMe() {
    const data = await api('GET', '/api/me');
    state.me = data.user;
    state.csrf = data.csrf_token || '';
  }

  async function loadPhones() {
    const data = await api('GET', '/api/phones');
    state.phones = new Map(((data && data.phones) || []).map((p) => [p.account.user_id, p]));
  }

  async function loadUsers() {
    const [data] = await Promise.all([api('GET', '/api/users'), loadPhones().catch(() => {})]);
    state.users = (data && data.users) || [];
    state.users.sort((a, b) => String(a.name || a.email).localeCompare(String(b.name || b.email)));
    render();
  }

  function roleSelect(user) {
    const sel = el('select');
    sel.setAttribute('aria-label', `Role for ${user.name || user.email}`);
    sel.dataset.userId = user.id;
    for (const [value, label] of ROLES) {
      const opt = el('option', null, label);
      opt.value = value;
      if (value === user.role) opt.selected = true;
      sel.append(opt);
    }
    if (!ROLES.some(([v]) => v === user.role)) {
      const opt = el('option', null, String(user.role));
      opt.value = String(user.role);
      opt.selected = true;
      sel.append(opt);
    }
    const self = state.me && user.id === state.me.id;
    if (self) {
      sel.disabled = true;
      sel.title = 'You cannot change your own role';
    }
    sel.addEventListener('change', async () => {
      const previous = user.role;
      sel.disabled = true;
      try {
        const updated = await api('PATCH', `/api/users/${encodeURIComponent(user.id)}`, { role: sel.value });
        Object.assign(user, updated || { role: sel.value });
        flash(`${user.name || user.email} is now ${labelOf(user.role)}.`, 'ok');
      } catch (e) {
        sel.value = previous;
        showError(e);
      } finally {
        sel.disabled = false;
      }
    });
    return sel;
  }

  // The SIP phone cell: account and registration, set up / new secret / remove.
  function phoneCell(user) {
    const td = el('td', 'sip-phone');
    const phone = state.phones.get(user.id);
    const who = user.name || user.email;
    if (phone) {
      const regs = phone.registrations || [];
      td.append(el('code', null, phone.account.username), ' ');
      td.append(
        el('span', regs.length ? 'badge ok sip-registered' : 'badge muted sip-registered', regs.length ? `registered (${regs.length})` : 'not registered'),
      );
      if (regs.length) td.title = regs.map((r) => `${r.contact} from ${r.source} until ${new Date(r.expires_at).toLocaleTimeString()}`).join('\n');
    } else {
      td.append(el('span', 'muted', 'none'));
    }
    const set = el('button', 'sip-set', phone ? 'New secret' : 'Set up');
    set.type = 'button';
    set.setAttribute('aria-label', phone ? `New SIP secret for ${who}` : `Set up a SIP phone for ${who}`);
    set.addEventListener('click', async () => {
      set.disabled = true;
      try {
        const res = await api('PUT', `/api/users/${encodeURIComponent(user.id)}/sip`, {});
        showSecret(user, res);
        await loadPhones();
        render();
        $('sip-done').focus();
      } catch (e) {
        set.disabled = false;
        showError(e);
      }
    });
    td.append(' ', set);
    if (phone) {
      const remove = el('button', 'danger sip-remove', 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove the SIP phone of ${who}`);
      remove.addEventListener('click', async () => {
        if (!window.confirm(`Remove the SIP phone of ${who}? It will no longer register.`)) return;
        remove.disabled = true;
        try {
          await api('DELETE', `/api/users/${encodeURIComponent(user.id)}/sip`);
          flash(`${who} has no SIP phone now.`, 'ok');
          await loadPhones();
          render();
        } catch (e) {
          remove.disabled = false;
          showError(e);
        }
      });
      td.append(' ', remove);
    }
    return td;
  }

  function showSecret(user, res) {
    $('sip-user').textContent = user.name || user.email;
    $('sip-username').textContent = res.account.username;
    $('sip-secret').textContent = res.secret;
    $('sip-domain').textContent = res.account.realm;
    $('sip-registrar').textContent = res.registrar || 'this node answers no SIP (set sip_listen); use a node that does';
    $('sip-card').hidden = false;
    flash(`SIP phone set for ${user.name || user.email}: copy the secret now.`, 'ok');
  }

  const labelOf = (role) => (ROLES.find(([v]) => v === role) || [role, String(role)])[1].toLowerCase();

  function render() {
    const body = $('users-body');
    if (!state.users.length) {
      const tr = el('tr');
      const td = el('td', 'muted', 'No users yet.');
      td.colSpan = 6;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...state.users.map((user) => {
        const tr = el('tr', user.active ? '' : 'inactive');
        tr.dataset.userId = user.id;
        const self = state.me && user.id === state.me.id;
        const name = el('td', null, user.name || '');
        if (self) name.append(el('span', 'muted', ' (you)'));
        const roleCell = el('td');
        roleCell.append(roleSelect(user));
        const status = el('td', 'user-status', user.active ? 'Active' : 'Deactivated');
        const actions = el('td');
        const toggle = el('button', user.active ? 'danger toggle-active' : 'toggle-active', user.active ? 'Deactivate' : 'Activate');
        toggle.type = 'button';
        toggle.setAttribute('aria-label', `${user.active ? 'Deactivate' : 'Activate'} ${user.name || user.email}`);
        if (self) {
          toggle.disabled = true;
          toggle.title = 'You cannot deactivate your own account';
        }
        toggle.addEventListener('click', async () => {
          toggle.disabled = true;
          try {
            const updated = await api('PATCH', `/api/users/${encodeURIComponent(user.id)}`, { active: !user.active });
            Object.assign(user, updated || { active: !user.active });
            flash(`${user.name || user.email} ${user.active ? 'can sign in again' : 'can no longer sign in'}.`, 'ok');
            render();
            const again = document.querySelector(`tr[data-user-id="${CSS.escape(user.id)}"] .toggle-active`);
            if (again) again.focus();
          } catch (e) {
            toggle.disabled = false;
            showError(e);
          }
        });
        actions.append(toggle);
        tr.append(name, el('td', null, user.email || ''), roleCell, status, phoneCell(user), actions);
        return tr;
      }),
    );
  }

  function setFormEnabled(enabled) {
    for (const node of $('add-user-form').querySelectorAll('input, select, button')) node.disabled = !enabled;
  }

  async function addUser(e) {
    e.preventDefault();
    const payload = {
      email: $('new-email').value.trim(),
      name: $('new-name').value.trim(),
      role: $('new-role').value,
      password: $('new-password').value,
    };
    const missing = [['new-email', payload.email], ['new-name', payload.name], ['new-password', payload.password]].find(([, v]) => !v);
    if (missing) {
      flash('Email, name and password are all required.', 'error');
      $(missing[0]).focus();
      return;
    }
    $('add-user').disabled = true;
    try {
      const user = await api('POST', '/api/users', payload);
      $('add-user-form').reset();
      flash(`Added ${(user && (user.name || user.email)) || payload.email}.`, 'ok');
      await loadUsers();
      $('new-email').focus();
    } catch (err) {
      showError(err);
    } finally {
      $('add-user').disabled = false;
    }
  }

  async function init() {
    $('add-user-form').addEventListener('submit', addUser);
    $('sip-done').addEventListener('click', () => {
      $('sip-card').hidden = true;
      $('sip-secret').textContent = '';
    });
    $('logout').addEventListener('click', async () => {
      try {
        await api('POST', '/api/auth/logout', {});
      } catch {
        /* leaving anyway */
      }
      location.href = '/login';
    });

    try {
      await loadMe();
    } catch (e) {
      if (e.status !== 401) showError(e);
      return;
    }
    $('user-name').textContent = state.me.name || state.me.email || '';
    $('user-role').textContent = String(state.me.role || '').replace(/_/g, ' ');

    try {
      await loadUsers();
    } catch (e) {
      showError(e);
      const tr = el('tr');
      const td = el('td', 'muted', e.status === 403 ? 'Only administrators can manage users.' : 'Users could not be loaded.');
      td.colSpan = 6;
      tr.append(td);
      $('users-body').replaceChildren(tr);
      if (e.status === 403) setFormEnabled(false);
    }
  }

  init();
})();
