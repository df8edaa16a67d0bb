// Switchboard knowledge-base manager: list, edit, publish, archive, versions with
// diffs and roll back, file import, and the "try a question" search tester.
// User-supplied text is only ever written with textContent.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const { el } = window.Switchboard;
  const state = { me: null, csrf: '', articles: [], current: null, canEdit: false };
  const api = window.Switchboard.client({ csrf: () => state.csrf, refresh: () => loadMe() });

  let flashTimer = null;
  function flash(message, kind) {
    const f = $('flash');
    clearTimeout(flashTimer);
    f.className = `flash ${kind || ''}`;
    f.textContent = message;
    if (kind !== 'error') flashTimer = setTimeout(() => { f.textContent = ''; }, 6000);
  }
  const showError = (e) => flash((e && e.message) || 'Something went wrong.', 'error');
  const when = (t) => new Date(t).toLocaleString();

  async function loadMe() {
    const data = await api('GET', '/api/me');
    state.me = data.user;
    state.csrf = data.csrf_token || '';
  }

  // ---- list -------------------------------------------------------------
  async function loadList() {
    const params = new URLSearchParams();
    const title = $('filter-title').value.trim();
    if (title) params.set('title', title);
    if ($('filter-status').value) params.set('status', $('filter-status').value);
    if ($('filter-lang').value) params.set('lang', $('filter-lang').value);
    const data = await api('GET', `/api/kb/articles?${params}`);
    state.articles = (data && data.articles) || [];
    renderList();
  }

  function renderList() {
    const ul = $('articles');
    if (!state.articles.length) {
      ul.replaceChildren(el('li', 'muted', 'No articles.'));
      return;
    }
    ul.replaceChildren(...state.articles.map((a) => {
      const li = el('li');
      if (state.current && state.current.article.id === a.id) li.setAttribute('aria-current', 'true');
      const b = el('button');
      b.type = 'button';
      b.append(el('span', null, a.title));
      const pending = a.status === 'published' && a.published_version !== a.version ? ' · unpublished changes' : '';
      b.append(el('span', 'kb-meta', `${a.status} · ${a.lang} · v${a.version}${pending}${a.tags.length ? ' · ' + a.tags.join(', ') : ''}`));
      b.addEventListener('click', () => open(a.id).catch(showError));
      li.append(b);
      return li;
    }));
  }

  // ---- editor -----------------------------------------------------------
  async function open(id) {
    state.current = await api('GET', `/api/kb/articles/${encodeURIComponent(id)}`);
    fillEditor();
    renderList();
    await loadVersions();
  }

  function fillEditor() {
    const cur = state.current;
    $('diff').hidden = true;
    $('diff-heading').hidden = true;
    if (!cur) {
      $('editor-heading').textContent = 'New article';
      $('article-state').textContent = '';
      for (const f of ['title', 'tags', 'body']) $(f).value = '';
      $('lang').value = '';
      $('unpublish').hidden = true;
      $('archive').hidden = true;
      $('versions').replaceChildren(row(['Save the article to start its history.'], 5));
      return;
    }
    const a = cur.article;
    $('editor-heading').textContent = a.title;
    const live = a.status === 'published' ? `live version v${a.published_version}` : 'not searchable';
    $('article-state').textContent = `${a.status} · ${live} · latest v${a.version} by ${a.updated_by}, ${when(a.updated_at)}`;
    $('title').value = cur.content.title;
    $('lang').value = ['en', 'zh'].includes(cur.content.lang) ? cur.content.lang : '';
    $('tags').value = cur.content.tags.join(', ');
    $('body').value = cur.content.body;
    $('unpublish').hidden = a.status !== 'published';
    $('archive').hidden = a.status === 'archived';
  }

  function row(cells, span) {
    const tr = el('tr');
    if (span) {
      const td = el('td', 'muted', cells[0]);
      td.colSpan = span;
      tr.append(td);
      return tr;
    }
    for (const c of cells) {
      const td = el('td');
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    }
    return tr;
  }

  async function loadVersions() {
    const a = state.current.article;
    const data = await api('GET', `/api/kb/articles/${a.id}/versions`);
    const rows = data.versions.map((v) => {
      const actions = el('span', 'kb-actions');
      if (v.version !== a.version) {
        const d = el('button', null, `Diff to v${a.version}`);
        d.type = 'button';
        d.addEventListener('click', () => showDiff(v.version, a.version).catch(showError));
        actions.append(d);
        if (state.canEdit) {
          const r = el('button', null, 'Roll back');
          r.type = 'button';
          r.addEventListener('click', () => rollback(v.version).catch(showError));
          actions.append(r);
        }
      }
      const label = `v${v.version}${v.published ? ' (live)' : ''}`;
      return row([label, when(v.created_at), v.author, v.note, actions]);
    });
    $('versions').replaceChildren(...rows);
  }

  async function showDiff(from, to) {
    const id = state.current.article.id;
    const d = await api('GET', `/api/kb/articles/${id}/diff?from=${from}&to=${to}`);
    const box = $('diff');
    box.replaceChildren(...d.lines.map((l) => {
      const prefix = l.op === 'insert' ? '+ ' : l.op === 'delete' ? '- ' : '  ';
      return el('div', l.op, prefix + l.text);
    }));
    $('diff-heading').textContent = `Changes from v${from} to v${to}`;
    $('diff-heading').hidden = false;
    box.hidden = false;
  }

  function draft() {
    return {
      title: $('title').value,
      body: $('body').value,
      lang: $('lang').value || null,
      tags: $('tags').value.split(',').map((t) => t.trim()).filter(Boolean),
    };
  }

  async function save(publish) {
    const body = { ...draft(), publish };
    let view;
    if (state.current) {
      body.base_version = state.current.article.version;
      view = await api('PUT', `/api/kb/articles/${state.current.article.id}`, body);
    } else {
      view = await api('POST', '/api/kb/articles', body);
    }
    state.current = view;
    flash(publish ? 'Saved and published.' : 'Draft saved. Search keeps serving the live version until you publish.', 'ok');
    fillEditor();
    await Promise.all([loadList(), loadVersions()]);
  }

  async function lifecycle(action) {
    const id = state.current.article.id;
    const res = await api('POST', `/api/kb/articles/${id}/${action}`, {});
    flash(`${action === 'archive' ? 'Archived' : 'Unpublished'}: removed ${res.index.removed} passages from search.`, 'ok');
    await open(id);
    await loadList();
  }

  async function rollback(version) {
    const id = state.current.article.id;
    const res = await api('POST', `/api/kb/articles/${id}/rollback`, { version });
    flash(`Restored v${version} as v${res.article.version}.`, 'ok');
    await open(id);
    await loadList();
  }

  // ---- try a question ---------------------------------------------------
  async function tryQuestion(ev) {
    ev.preventDefault();
    const text = $('question').value.trim();
    if (!text) return;
    const res = await api('POST', '/api/kb/search', {
      text,
      lang: $('try-lang').value || null,
      k: Number($('try-k').value),
    });
    $('try-took').textContent = `${res.passages.length} passages in ${res.took_ms.toFixed(1)} ms`;
    $('passages').replaceChildren(...res.passages.map((p, i) => {
      const div = el('div', 'passage');
      const h = el('strong', null, `${i + 1}. ${p.title}${p.heading ? ' — ' + p.heading : ''}`);
      const ranks = [p.lexical_rank ? `lexical #${p.lexical_rank}` : null, p.vector_rank ? `vector #${p.vector_rank}` : null].filter(Boolean).join(', ');
      div.append(h, el('div', 'kb-meta', `score ${p.score.toFixed(4)} · ${ranks} · v${p.version} · ${p.lang} · ${p.chunk_id}`), el('p', null, p.text));
      const openBtn = el('button', null, 'Open article');
      openBtn.type = 'button';
      openBtn.addEventListener('click', () => open(p.article_id).catch(showError));
      div.append(openBtn);
      return div;
    }));
    if (!res.passages.length) $('passages').replaceChildren(el('p', 'muted', 'Nothing published matches this question.'));
    // What the virtual agent would answer (roles that may ask; others just see passages).
    $('bot-answer').hidden = true;
    try {
      const tried = await api('POST', '/api/kb/try', { question: text });
      $('bot-decision').textContent = tried.decision.replace(/_/g, ' ');
      $('bot-reason').textContent = tried.reason;
      $('bot-reply').textContent = tried.reply;
      $('bot-answer').hidden = false;
    } catch {
      /* agents may search but not run the virtual agent; the passages stand alone */
    }
  }

  // ---- import -----------------------------------------------------------
  async function importFiles(ev) {
    ev.preventDefault();
    const input = $('import-files');
    if (!input.files.length) {
      flash('Choose files to import first.', 'error');
      return;
    }
    const files = [];
    for (const f of input.files) files.push({ name: f.webkitRelativePath || f.name, content: await f.text() });
    $('import-result').textContent = `Importing ${files.length} files…`;
    const r = await api('POST', '/api/kb/import', { files, publish: $('import-publish').checked });
    const skipped = r.skipped.map(([name, why]) => `${name} (${why})`).join('; ');
    $('import-result').textContent = `${r.created.length} created, ${r.updated.length} updated, ${r.unchanged} unchanged` + (skipped ? `; skipped: ${skipped}` : '');
    await loadList();
  }

  async function init() {
    $('logout').addEventListener('click', async () => {
      try { await api('POST', '/api/auth/logout', {}); } catch { /* leaving anyway */ }
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
    state.canEdit = ['knowledge_manager', 'admin'].includes(state.me.role);
    for (const n of document.querySelectorAll('.edit-only')) n.hidden = !state.canEdit;
    $('read-only-note').hidden = state.canEdit;
    for (const id of ['title', 'lang', 'tags', 'body']) $(id).readOnly = !state.canEdit;

    $('filter-form').addEventListener('submit', (e) => { e.preventDefault(); loadList().catch(showError); });
    $('new-article').addEventListener('click', () => { state.current = null; fillEditor(); renderList(); $('title').focus(); });
    $('editor').addEventListener('submit', (e) => { e.preventDefault(); save(false).catch(showError); });
    $('save-publish').addEventListener('click', () => save(true).catch(showError));
    $('unpublish').addEventListener('click', () => lifecycle('unpublish').catch(showError));
    $('archive').addEventListener('click', () => lifecycle('archive').catch(showError));
    $('try-form').addEventListener('submit', (e) => tryQuestion(e).catch(showError));
    $('import-form').addEventListener('submit', (e) => importFiles(e).catch(showError));
    fillEditor();
    try {
      await loadList();
    } catch (e) {
      showError(e);
    }
  }

  init();
})();
