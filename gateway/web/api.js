// Shared by Switchboard's staff pages: a DOM helper that only ever writes text,
// and the API client (JSON, session cookie, X-CSRF-Token, one retry after the
// CSRF token is refreshed, sign-in page on 401). Exposed as window.Switchboard.
(() => {
  'use strict';

  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // Creates an element; `text` is set with textContent, never parsed as HTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // csrf(): the current token; refresh(): reloads it (GET /api/me).
  function client({ csrf, refresh }) {
    async function api(method, path, body, retried) {
      const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
      if (method !== 'GET') {
        opts.headers['Content-Type'] = 'application/json';
        opts.headers['X-CSRF-Token'] = csrf();
        opts.body = JSON.stringify(body || {});
      }
      let res;
      try {
        res = await fetch(path, opts);
      } catch {
        throw new ApiError('network', 'Cannot reach the server. Check the connection and try again.', 0);
      }
      const raw = res.status === 204 ? '' : await res.text();
      let data = null;
      if (raw) {
        try {
          data = JSON.parse(raw);
        } catch {
          data = null;
        }
      }
      if (!res.ok) {
        const err = (data && data.error) || {};
        if (res.status === 401) {
          location.href = '/login';
          throw new ApiError(err.code || 'unauthenticated', 'Your session has ended. Please sign in again.', 401);
        }
        if (err.code === 'csrf_failed' && !retried) {
          await refresh();
          return api(method, path, body, true);
        }
        throw new ApiError(err.code || `http_${res.status}`, err.message || `Request failed (HTTP ${res.status}).`, res.status);
      }
      return data;
    }
    return api;
  }

  window.Switchboard = Object.freeze({ ApiError, el, client });
})();
