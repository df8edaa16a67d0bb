#!/usr/bin/env node
// End-to-end browser journey for Switchboard: a customer chats through the web widget on
// /demo, an agent answers from /inbox. Standalone script (no test runner): exits 0 and
// prints "N passed, 0 failed" on success, exits 1 on the first failed check.
//
// Environment:
//   SWITCHBOARD_URL          base URL of a running server (default http://127.0.0.1:18080)
//   AGENT_EMAIL              an active account with the agent (or supervisor/admin) role
//   AGENT_PASSWORD           its password
//   ADMIN_EMAIL, ADMIN_PASSWORD  optional admin account; enables the admin page checks
//   SWITCHBOARD_RESTART_CMD  optional shell command that restarts the server and returns once
//                            it is healthy again; enables the restart step
//   CHROMIUM                 browser binary (default /usr/bin/chromium)
//   HEADED=1                 show the browser window

import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

const BASE = (process.env.SWITCHBOARD_URL || 'http://127.0.0.1:18080').replace(/\/+$/, '');
const AGENT_EMAIL = process.env.AGENT_EMAIL;
const AGENT_PASSWORD = process.env.AGENT_PASSWORD;
const RESTART_CMD = process.env.SWITCHBOARD_RESTART_CMD || '';
const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T = 15000; // default wait
const T_RESTART = 60000; // waits that span a server restart

const FIRST = 'Hello, my internet is down';
const REPLY1 = 'Sorry to hear that — let me check';
const REPLY_A = 'Reply A';
const REPLY_B = 'Reply B';
const XSS_IMG = '<img src=x onerror="window.__xss=1">';
const XSS_B = '<b>bold</b>';
const XSS_SCRIPT = '<script>window.__xss=2</script>';
const DURING_RESTART = 'Sent during restart';
const AFTER_RESTART = 'After restart';

const started = Date.now();
let passed = 0;
let browser = null;
const pages = {};
const pageErrors = [];

function log(msg) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${s}s] ${msg}`);
}

async function finish(code) {
  if (browser) await browser.close().catch(() => {});
  process.exit(code);
}

async function fail(name, err) {
  const message = err && err.message ? err.message : String(err);
  console.error(`\nFAILED: ${name}\n  ${message.split('\n').join('\n  ')}`);
  for (const [label, page] of Object.entries(pages)) {
    if (page && !page.isClosed()) {
      const file = `/tmp/switchboard-failure-${label}.png`;
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`  screenshot of the ${label} page: ${file} (${page.url()})`);
    }
  }
  if (pageErrors.length) console.error(`  page errors seen:\n    ${pageErrors.join('\n    ')}`);
  console.log(`${passed} passed, 1 failed`);
  await finish(1);
}

async function check(name, fn) {
  log(`… ${name}`);
  try {
    await fn();
  } catch (err) {
    await fail(name, err);
  }
  passed += 1;
  log(`ok ${name}`);
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll until fn() returns a truthy value; the last value is reported on timeout.
async function waitUntil(desc, fn, timeout = T) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = `error: ${e.message}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${desc}; last observed: ${JSON.stringify(last ?? null)}`);
    }
    await pause(150);
  }
}

// ---------------------------------------------------------------- page readers

function widgetMessages(page) {
  return page.$$eval('#sb-chat-messages .sb-msg', (els) =>
    els.map((e) => ({
      seq: e.dataset.seq ? Number(e.dataset.seq) : null,
      text: (e.querySelector('.sb-text') || e).textContent,
      from: e.classList.contains('sb-from-customer') ? 'customer' : e.classList.contains('sb-from-bot') ? 'bot' : 'agent',
      pending: e.classList.contains('sb-pending'),
    })),
  );
}

function widgetSeqs(page) {
  return page.$$eval('#sb-chat-messages [data-seq]', (els) => els.map((e) => Number(e.dataset.seq)));
}

function timelineEvents(page) {
  return page.$$eval('#timeline .event', (els) =>
    els.map((e) => ({
      seq: Number(e.dataset.seq),
      text: (e.querySelector('.body') || e).textContent,
      kind: e.classList.contains('msg-customer')
        ? 'customer'
        : e.classList.contains('msg-agent')
          ? 'agent'
          : e.classList.contains('msg-bot')
            ? 'bot'
            : e.classList.contains('note')
              ? 'note'
              : 'system',
    })),
  );
}

const countText = (list, text, from) => list.filter((m) => m.text === text && (!from || m.from === from || m.kind === from)).length;

function assertUniqueIncreasing(seqs, where) {
  for (let i = 1; i < seqs.length; i += 1) {
    assert(seqs[i] > seqs[i - 1], `${where}: data-seq values are not strictly increasing (duplicate or out of order): ${JSON.stringify(seqs)}`);
  }
}

// Wait for a text to be present in the widget, then require it exactly once.
async function widgetHasOnce(page, text, from, timeout = T) {
  await waitUntil(`"${text}" in the widget`, async () => countText(await widgetMessages(page), text, from) >= 1, timeout);
  const msgs = await widgetMessages(page);
  assert(countText(msgs, text, from) === 1, `"${text}" shown ${countText(msgs, text, from)} times in the widget: ${JSON.stringify(msgs)}`);
}

async function timelineHasOnce(page, text, kind, timeout = T) {
  await waitUntil(`"${text}" in the agent timeline`, async () => countText(await timelineEvents(page), text, kind) >= 1, timeout);
  const evs = await timelineEvents(page);
  assert(countText(evs, text, kind) === 1, `"${text}" shown ${countText(evs, text, kind)} times in the agent timeline: ${JSON.stringify(evs)}`);
}

async function openWidget(page) {
  await page.locator('#sb-chat-launcher').waitFor({ state: 'visible', timeout: T });
  if (await page.locator('#sb-chat-panel').isHidden()) await page.click('#sb-chat-launcher');
  await page.locator('#sb-chat-panel').waitFor({ state: 'visible', timeout: T });
}

async function customerSend(page, text) {
  await page.fill('#sb-chat-input', text);
  await page.press('#sb-chat-input', 'Enter');
}

async function agentReply(page, text) {
  await page.fill('#reply-text', text);
  await page.click('#send-reply');
  await timelineHasOnce(page, text, 'agent');
}

function watchPage(label, page) {
  pages[label] = page;
  page.on('pageerror', (err) => {
    pageErrors.push(`[${label}] ${err.message}`);
    log(`  (${label} page error: ${err.message})`);
  });
  page.on('dialog', (dialog) => {
    pageErrors.push(`[${label}] unexpected dialog: ${dialog.type()} ${dialog.message()}`);
    log(`  (${label} page opened a ${dialog.type()} dialog: ${dialog.message()})`);
    dialog.dismiss().catch(() => {});
  });
}

function runRestart(cmd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`SWITCHBOARD_RESTART_CMD exited with ${signal ? `signal ${signal}` : `code ${code}`}`));
    });
  });
}

// ---------------------------------------------------------------- journey

async function main() {
  if (!AGENT_EMAIL || !AGENT_PASSWORD) {
    console.error('Set AGENT_EMAIL and AGENT_PASSWORD (an active agent account on the server under test).');
    console.log('0 passed, 1 failed');
    process.exit(2);
  }
  log(`Switchboard at ${BASE}; browser ${CHROMIUM}; restart step ${RESTART_CMD ? 'enabled' : 'skipped (SWITCHBOARD_RESTART_CMD not set)'}`);

  await check('server answers /demo and /widget.js', async () => {
    for (const path of ['/demo', '/widget.js']) {
      const res = await fetch(BASE + path).catch((e) => {
        throw new Error(`cannot reach ${BASE}${path}: ${e.message}`);
      });
      assert(res.ok, `GET ${path} returned HTTP ${res.status}`);
    }
  });

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const customerCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agentCtx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  let customer = await customerCtx.newPage();
  watchPage('customer', customer);
  const agent = await agentCtx.newPage();
  watchPage('agent', agent);

  // 1. Customer starts a chat on the demo site.
  let conversationId = null;
  await check('customer opens /demo and the widget', async () => {
    await customer.goto(`${BASE}/demo`);
    await openWidget(customer);
    await customer.locator('#sb-chat-input').waitFor({ state: 'visible', timeout: T });
  });

  await check('customer enters a name and sends the first message', async () => {
    await customer.fill('#sb-chat-name', 'Ann Example');
    await customer.fill('#sb-chat-input', FIRST);
    await customer.click('#sb-chat-send');
    await widgetHasOnce(customer, FIRST, 'customer');
    await waitUntil('the first message to be confirmed (data-seq, not pending)', async () => {
      const m = (await widgetMessages(customer)).find((x) => x.text === FIRST);
      return m && m.seq && !m.pending;
    });
    await waitUntil('#sb-chat-status to say Connected', async () => (await customer.textContent('#sb-chat-status')) === 'Connected');
    const stored = await customer.evaluate(() => JSON.parse(localStorage.getItem('switchboard.chat') || 'null'));
    assert(stored && stored.conversation_id && stored.token, `localStorage switchboard.chat lacks conversation_id/token: ${JSON.stringify(stored)}`);
    assert(!stored.outbox || stored.outbox.length === 0, `outbox not empty after ack: ${JSON.stringify(stored.outbox)}`);
    conversationId = stored.conversation_id;
    log(`  conversation ${conversationId}`);
  });

  // 2. Agent signs in, finds and takes the conversation, replies.
  let me = null;
  await check('agent signs in through the /login form and lands on /inbox', async () => {
    await agent.goto(`${BASE}/login`);
    await agent.fill('#email', AGENT_EMAIL);
    await agent.fill('#password', AGENT_PASSWORD);
    await Promise.all([agent.waitForURL(/\/(inbox|login)/, { timeout: T }), agent.click('#login-submit')]);
    await agent.waitForLoadState('domcontentloaded');
    assert(new URL(agent.url()).pathname === '/inbox', `expected /inbox after sign-in, got ${agent.url()} (check AGENT_EMAIL/AGENT_PASSWORD)`);
    me = await agent.evaluate(() => fetch('/api/me', { credentials: 'same-origin' }).then((r) => r.json()));
    assert(me && me.user && me.user.id, `GET /api/me did not return a user: ${JSON.stringify(me)}`);
    await waitUntil('the header to show the user name', async () => (await agent.textContent('#user-name')) === me.user.name);
  });

  const item = () => agent.locator(`li.conversation-item[data-id="${conversationId}"]`);
  await check('agent sees the conversation in the unassigned view with its preview', async () => {
    await agent.click('#view-unassigned');
    await agent.selectOption('#status-filter', 'open');
    await item().waitFor({ state: 'visible', timeout: T });
    await waitUntil('the list preview', async () => ((await item().textContent()) || '').includes(FIRST));
    const text = await item().textContent();
    assert(text.includes('Ann Example'), `list item does not show the contact name: ${text}`);
  });

  await check("agent opens the conversation and sees the customer's message", async () => {
    await item().click();
    await timelineHasOnce(agent, FIRST, 'customer');
    const seqs = await agent.$$eval('#timeline .msg-customer', (els) => els.map((e) => e.getAttribute('data-seq')));
    assert(seqs.every((s) => /^\d+$/.test(s || '')), `customer message elements lack data-seq: ${JSON.stringify(seqs)}`);
  });

  await check('agent assigns the conversation to themselves', async () => {
    await agent.click('#assign-self');
    await waitUntil('#conv-assignee to show the agent', async () => ((await agent.textContent('#conv-assignee')) || '').includes(me.user.name));
  });

  await check('customer sees "Agent is typing…" while the agent writes', async () => {
    await agent.fill('#reply-text', REPLY1);
    await customer.locator('.sb-typing', { hasText: 'Agent is typing' }).waitFor({ timeout: T });
  });

  await check('agent replies (Enter sends)', async () => {
    await agent.press('#reply-text', 'Enter');
    await timelineHasOnce(agent, REPLY1, 'agent');
    // The reply can show up over the socket before the POST returns and clears the box.
    await waitUntil('the reply box to be cleared after sending', async () => (await agent.inputValue('#reply-text')) === '');
  });

  // 3. Customer sees the reply once.
  await check('customer sees the reply exactly once', async () => {
    await widgetHasOnce(customer, REPLY1, 'agent');
  });

  // 4. Customer leaves; agent keeps writing; customer comes back to the full transcript.
  await check('customer closes the page; agent sends Reply A and Reply B', async () => {
    await customer.close();
    await agentReply(agent, REPLY_A);
    await agentReply(agent, REPLY_B);
  });

  await check('customer returns: full transcript, each message once, in order', async () => {
    customer = await customerCtx.newPage();
    watchPage('customer', customer);
    await customer.goto(`${BASE}/demo`);
    await openWidget(customer);
    await widgetHasOnce(customer, REPLY_B, 'agent');
    const msgs = await widgetMessages(customer);
    const expected = [FIRST, REPLY1, REPLY_A, REPLY_B];
    const texts = msgs.map((m) => m.text);
    assert(JSON.stringify(texts) === JSON.stringify(expected), `transcript is ${JSON.stringify(texts)}, expected ${JSON.stringify(expected)}`);
    assert(msgs.every((m) => m.seq && !m.pending), `some messages are unconfirmed: ${JSON.stringify(msgs)}`);
    assertUniqueIncreasing(await widgetSeqs(customer), 'widget after reload');
  });

  // 5. Stored XSS: markup from the customer is shown as text everywhere.
  await check('customer messages with markup reach the agent as literal text', async () => {
    for (const text of [XSS_IMG, XSS_B, XSS_SCRIPT]) {
      await customerSend(customer, text);
      await widgetHasOnce(customer, text, 'customer');
    }
    for (const text of [XSS_IMG, XSS_B, XSS_SCRIPT]) await timelineHasOnce(agent, text, 'customer');
    // The conversation is assigned now, so it is listed under "mine".
    await agent.click('#view-mine');
    await waitUntil('the list preview (view "mine") to show the last message literally', async () =>
      ((await item().locator('.conv-preview').textContent({ timeout: 1000 })) || '').includes('<script>'),
    );
  });

  await check('no markup was interpreted in the inbox or the widget', async () => {
    const agentXss = await agent.evaluate(() => typeof window.__xss);
    const customerXss = await customer.evaluate(() => typeof window.__xss);
    assert(agentXss === 'undefined', `window.__xss is set in the agent page (${agentXss})`);
    assert(customerXss === 'undefined', `window.__xss is set in the customer page (${customerXss})`);
    for (const sel of ['#timeline img', '#timeline b', '#timeline script', '#conversation-list img', '#conversation-list b']) {
      assert((await agent.locator(sel).count()) === 0, `found an element matching ${sel} in the inbox`);
    }
    for (const sel of ['#sb-chat-messages img', '#sb-chat-messages b', '#sb-chat-messages script']) {
      assert((await customer.locator(sel).count()) === 0, `found an element matching ${sel} in the widget`);
    }
    assert(!pageErrors.some((e) => e.includes('dialog')), `a dialog was opened: ${pageErrors.join('; ')}`);
  });

  // 6. Server restart while both sides are connected.
  if (RESTART_CMD) {
    await check('server restarts while both pages are open; a message typed meanwhile is delivered once', async () => {
      log(`  running: ${RESTART_CMD}`);
      const restart = runRestart(RESTART_CMD);
      let restartDone = false;
      restart.then(
        () => {
          restartDone = true;
        },
        () => {
          restartDone = true;
        },
      );
      // Type while the server is away if we can observe that; otherwise right after.
      await waitUntil(
        'the widget to notice the restart (or the restart to finish)',
        async () => restartDone || (await customer.textContent('#sb-chat-status')) !== 'Connected',
        T_RESTART,
      );
      log(`  widget status while typing: ${JSON.stringify(await customer.textContent('#sb-chat-status'))}`);
      await customerSend(customer, DURING_RESTART);
      await restart;
      log('  restart command finished');
      await waitUntil('the widget to reconnect', async () => (await customer.textContent('#sb-chat-status')) === 'Connected', T_RESTART);
      await waitUntil('the inbox to reconnect', async () => agent.locator('#connection-status').isHidden(), T_RESTART);
      await widgetHasOnce(customer, DURING_RESTART, 'customer', T_RESTART);
      await waitUntil('the restart message to be confirmed', async () => {
        const m = (await widgetMessages(customer)).find((x) => x.text === DURING_RESTART);
        return m && m.seq && !m.pending;
      }, T_RESTART);
      await timelineHasOnce(agent, DURING_RESTART, 'customer', T_RESTART);
      const stored = await customer.evaluate(() => JSON.parse(localStorage.getItem('switchboard.chat') || 'null'));
      assert(stored && (!stored.outbox || stored.outbox.length === 0), `outbox not empty after delivery: ${JSON.stringify(stored && stored.outbox)}`);
    });

    await check('after the restart the agent reply reaches the customer exactly once', async () => {
      await agentReply(agent, AFTER_RESTART);
      await widgetHasOnce(customer, AFTER_RESTART, 'agent');
      const msgs = await widgetMessages(customer);
      const texts = msgs.map((m) => m.text);
      const expected = [FIRST, REPLY1, REPLY_A, REPLY_B, XSS_IMG, XSS_B, XSS_SCRIPT, DURING_RESTART, AFTER_RESTART];
      assert(JSON.stringify(texts) === JSON.stringify(expected), `transcript is ${JSON.stringify(texts)}, expected ${JSON.stringify(expected)}`);
      assertUniqueIncreasing(await widgetSeqs(customer), 'widget after restart');
      const evs = await timelineEvents(agent);
      assertUniqueIncreasing(evs.map((e) => e.seq), 'agent timeline after restart');
    });
  } else {
    log('skipping the restart step (SWITCHBOARD_RESTART_CMD not set)');
  }

  // 7. Agent closes the conversation.
  await check('agent closes the conversation as resolved', async () => {
    await agent.selectOption('#disposition', 'resolved');
    await agent.click('#close-conversation');
    await waitUntil('#conv-status to show closed', async () => ((await agent.textContent('#conv-status')) || '').startsWith('closed'));
    await agent.locator('#reopen').waitFor({ state: 'visible', timeout: T });
    const evs = await timelineEvents(agent);
    assertUniqueIncreasing(evs.map((e) => e.seq), 'agent timeline');
    assert(pageErrors.length === 0, `JavaScript errors on the pages: ${pageErrors.join('; ')}`);
  });

  // 8. Admin pages: the landing page, user management, and an agent kept out.
  if (ADMIN_EMAIL && ADMIN_PASSWORD) {
    const adminCtx = await browser.newContext();
    const admin = await adminCtx.newPage();
    admin.on('pageerror', (e) => pageErrors.push(`admin: ${e.message}`));
    await check('landing page links the inbox, the demo and the API document', async () => {
      await admin.goto(`${BASE}/`);
      for (const href of ['/inbox', '/demo', '/api/openapi.json']) {
        assert((await admin.locator(`a[href="${href}"]`).count()) > 0, `no link to ${href} on /`);
      }
    });
    await check('admin signs in and sees the staff accounts', async () => {
      await admin.goto(`${BASE}/login`);
      await admin.fill('#email', ADMIN_EMAIL);
      await admin.fill('#password', ADMIN_PASSWORD);
      await Promise.all([admin.waitForURL(/\/inbox/, { timeout: T }), admin.click('#login-submit')]);
      await admin.goto(`${BASE}/admin/users`);
      await admin.locator('#users-body tr', { hasText: AGENT_EMAIL }).waitFor({ timeout: T });
    });
    await check('admin adds a supervisor, changes the role, and deactivates the account', async () => {
      await admin.fill('#new-email', 'dana@example.com');
      await admin.fill('#new-name', 'Dana Lead');
      await admin.selectOption('#new-role', 'supervisor');
      await admin.fill('#new-password', 'another long password');
      await admin.click('#add-user');
      const row = admin.locator('#users-body tr', { hasText: 'dana@example.com' });
      await row.waitFor({ timeout: T });
      await admin.selectOption('select[aria-label="Role for Dana Lead"]', 'analyst');
      await admin.locator('#flash', { hasText: 'is now analyst' }).waitFor({ timeout: T });
      await admin.click('button[aria-label="Deactivate Dana Lead"]');
      await row.locator('.user-status', { hasText: 'Deactivated' }).waitFor({ timeout: T });
      const users = await admin.evaluate(async () => (await fetch('/api/users')).json());
      const dana = users.users.find((u) => u.email === 'dana@example.com');
      assert(dana && dana.role === 'analyst' && dana.active === false, `stored user is ${JSON.stringify(dana)}`);
    });
    await check('admin sets up an agent\'s SIP phone and sees its secret once', async () => {
      const row = admin.locator('#users-body tr', { hasText: AGENT_EMAIL });
      await row.locator('.sip-phone', { hasText: 'none' }).waitFor({ timeout: T });
      await row.locator('button.sip-set').focus();
      await admin.keyboard.press('Enter');
      await admin.locator('#sip-card').waitFor({ state: 'visible', timeout: T });
      const secret = (await admin.textContent('#sip-secret')).trim();
      const username = (await admin.textContent('#sip-username')).trim();
      assert(/^[A-Za-z2-9]{20}$/.test(secret), `secret shown is ${JSON.stringify(secret)}`);
      assert(username === AGENT_EMAIL.split('@')[0].replace(/[^A-Za-z0-9._-]/g, ''), `username shown is ${username}`);
      assert((await admin.textContent('#sip-domain')).trim() === 'switchboard', 'realm shown');
      assert(await admin.evaluate(() => document.activeElement && document.activeElement.id === 'sip-done'), 'focus moves to Done');
      await row.locator('.sip-phone', { hasText: 'not registered' }).waitFor({ timeout: T });
      const phones = await admin.evaluate(async () => (await fetch('/api/phones')).json());
      assert(phones.phones.some((p) => p.account.username === username), `phones: ${JSON.stringify(phones)}`);
      await admin.keyboard.press('Enter');
      await admin.locator('#sip-card').waitFor({ state: 'hidden', timeout: T });
      assert((await admin.textContent('#sip-secret')) === '', 'the secret is cleared from the page');
      admin.once('dialog', (d) => d.accept());
      await row.locator('button.sip-remove').click();
      await row.locator('.sip-phone', { hasText: 'none' }).waitFor({ timeout: T });
    });
    await check('an agent opening the admin page is refused', async () => {
      const page = await agent.context().newPage();
      await page.goto(`${BASE}/admin/users`);
      await page.locator('#users-body', { hasText: 'Only administrators can manage users' }).waitFor({ timeout: T });
      assert((await page.locator('#users-body tr', { hasText: ADMIN_EMAIL }).count()) === 0, 'an agent saw the user list');
      await page.close();
    });
    await adminCtx.close();
  } else {
    log('skipping the admin pages (ADMIN_EMAIL / ADMIN_PASSWORD not set)');
  }

  // Pictures for humans.
  await agent.screenshot({ path: '/tmp/switchboard-inbox.png' });
  await openWidget(customer);
  await customer.screenshot({ path: '/tmp/switchboard-widget.png' });
  log('screenshots: /tmp/switchboard-inbox.png /tmp/switchboard-widget.png');

  console.log(`${passed} passed, 0 failed`);
  await finish(0);
}

main().catch((err) => fail('unexpected error', err));
