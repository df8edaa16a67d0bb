#!/usr/bin/env node
// Browser journey for routing: a customer asks for a person in the widget;
// two agents with different skills are signed in and Available; the more
// skilled one gets the offer (with a countdown) and declines; the other
// accepts, and the conversation opens with its context; the supervisor view
// shows the queue and the agents live. Standalone script like webchat.spec.mjs.
//
// Environment: SWITCHBOARD_URL, ADMIN_EMAIL, ADMIN_PASSWORD (an admin account),
// CHROMIUM (default /usr/bin/chromium), HEADED=1 to watch.

import { chromium } from 'playwright-core';
import { harness } from './harness.mjs';

const BASE = (process.env.SWITCHBOARD_URL || 'http://127.0.0.1:18080').replace(/\/+$/, '');
const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T = 20000;
const PASSWORD = 'routing test password 1';
const QUESTION = 'My invoice shows a double charge';
const { log, fail, check, assert, waitUntil, done, pages, setBrowser } = harness('routing');

// A logged-in API session for setup (cookie + CSRF), like the admin page uses.
async function session(email, password) {
  const res = await fetch(`${BASE}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  assert(res.ok, `login ${email}: HTTP ${res.status}`);
  const cookie = (res.headers.get('set-cookie') || '').split(';')[0];
  const { csrf_token: csrf } = await res.json();
  return async (method, path, body) => {
    const r = await fetch(BASE + path, {
      method,
      headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text}`);
    return data;
  };
}

async function signIn(page, email) {
  await page.goto(`${BASE}/login`);
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(/\/inbox/, { timeout: T }), page.click('#login-submit')]);
  await page.locator('#presence-control').waitFor({ state: 'visible', timeout: T });
}

async function main() {
  if (!ADMIN_EMAIL || !ADMIN_PASSWORD) {
    console.error('Set ADMIN_EMAIL and ADMIN_PASSWORD.');
    process.exit(2);
  }
  const admin = await session(ADMIN_EMAIL, ADMIN_PASSWORD);
  const suffix = Date.now().toString(36);
  const people = {};

  await check('admin creates two agents and a supervisor, a billing queue and skills', async () => {
    for (const [key, name, role] of [['expert', 'Erin Expert', 'agent'], ['novice', 'Nico Novice', 'agent'], ['lead', 'Sam Supervisor', 'supervisor']]) {
      const email = `${key}-${suffix}@example.com`;
      const u = await admin('POST', '/api/users', { email, name, role, password: PASSWORD });
      people[key] = { id: u.id, email, name };
    }
    // A request without a topic lands in the general queue: make it pick the most skilled agent.
    await admin('PUT', '/api/routing/queues/general', {
      kind: 'chat',
      required_skills: [{ skill: 'billing', min_proficiency: 1 }],
      strategy: { kind: 'skills_weighted' },
      offer_timeout: 90,
    });
    await admin('PUT', '/api/routing/queues/billing', {
      kind: 'chat',
      required_skills: [{ skill: 'billing', min_proficiency: 1 }],
      strategy: { kind: 'skills_weighted' },
      offer_timeout: 90,
    });
    await admin('PUT', `/api/routing/agents/${people.expert.id}`, { skills: { billing: 5 }, languages: ['en'], chat_capacity: 2 });
    await admin('PUT', `/api/routing/agents/${people.novice.id}`, { skills: { billing: 2 }, languages: ['en'], chat_capacity: 2 });
    // Erin has a SIP phone account (not registered: no phone runs here); Nico has none.
    const sip = await admin('PUT', `/api/users/${people.expert.id}/sip`, { username: `erin-${suffix}` });
    people.expert.sip = sip.account.username;
  });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  setBrowser(browser);
  const ctx = async (key) => {
    const c = await browser.newContext({ viewport: { width: 1366, height: 800 } });
    const p = await c.newPage();
    pages[key] = p;
    p.on('pageerror', (e) => log(`page error on ${key}: ${e.message}`));
    return p;
  };
  const expert = await ctx('expert');
  const novice = await ctx('novice');
  const lead = await ctx('supervisor');
  const customer = await ctx('customer');

  await check('both agents sign in and set themselves Available', async () => {
    for (const [page, who] of [[expert, people.expert], [novice, people.novice]]) {
      await signIn(page, who.email);
      await page.selectOption('#presence', 'available');
      await page.locator('#flash', { hasText: 'Status: available' }).waitFor({ timeout: T });
    }
  });

  await check('the supervisor opens the live view and sees both agents available', async () => {
    await lead.goto(`${BASE}/login`);
    await lead.fill('#email', people.lead.email);
    await lead.fill('#password', PASSWORD);
    await Promise.all([lead.waitForURL(/\/inbox/, { timeout: T }), lead.click('#login-submit')]);
    await lead.click('#supervisor-link');
    await lead.waitForURL(/\/supervisor/);
    for (const who of [people.expert, people.novice]) {
      await lead.locator(`#agents-body tr[data-agent="${who.id}"] td.state-available`).waitFor({ timeout: T });
    }
    // Times read as times (the router sends Rust Durations as {secs, nanos}).
    const text = await lead.textContent('#main');
    assert(!text.includes('NaN'), 'the live view shows NaN');
    // The Phone column: Erin's account is not registered, Nico has no account.
    await lead
      .locator(`#agents-body tr[data-agent="${people.expert.id}"] td.phone`, { hasText: `not registered (${people.expert.sip})` })
      .waitFor({ timeout: T });
    await lead.locator(`#agents-body tr[data-agent="${people.novice.id}"] td.phone`, { hasText: 'no SIP account' }).waitFor({ timeout: T });
  });

  let conversationId = null;
  await check('a customer writes in the widget and asks for a person', async () => {
    await customer.goto(`${BASE}/demo`);
    await customer.click('#sb-chat-launcher');
    await customer.fill('#sb-chat-input', QUESTION);
    await customer.click('#sb-chat-send');
    await waitUntil('the message to be stored', async () => {
      const s = await customer.evaluate(() => JSON.parse(localStorage.getItem('switchboard.chat') || 'null'));
      return s && s.conversation_id && (!s.outbox || s.outbox.length === 0) && s.conversation_id;
    });
    conversationId = await customer.evaluate(() => JSON.parse(localStorage.getItem('switchboard.chat')).conversation_id);
    await customer.click('#sb-chat-human');
    await customer.locator('#sb-chat-queue', { hasText: /agent|line/ }).waitFor({ timeout: T });
  });

  await check('the offer reaches the most skilled agent only, with a countdown', async () => {
    const card = (p) => p.locator('#offers .offer');
    const first = await waitUntil('an offer to one agent', async () => {
      if (await card(expert).count()) return 'expert';
      if (await card(novice).count()) return 'novice';
      return null;
    });
    assert(first === 'expert', `the offer went to the ${first} agent, not the most skilled one`);
    const holder = expert;
    const other = novice;
    assert((await card(other).count()) === 0, 'the offer went to both agents');
    const text = await card(holder).locator('.countdown').textContent();
    assert(/\d+ s left/.test(text), `no countdown: ${text}`);
    pages.holder = holder;
    pages.other = other;
  });

  await check('the first agent declines (keyboard: d) and the other agent gets the offer', async () => {
    const holder = pages.holder;
    const other = pages.other;
    await holder.locator('#timeline').click();
    await holder.keyboard.press('d');
    await holder.locator('#offers .offer').waitFor({ state: 'detached', timeout: T });
    await other.locator('#offers .offer').waitFor({ timeout: T });
  });

  await check('the second agent accepts and sees the conversation with its context', async () => {
    const other = pages.other;
    await other.click('#offers .offer button.accept');
    await waitUntil('the conversation to open', async () => (await other.evaluate(() => location.hash)).includes(conversationId));
    await other.locator('#timeline .event', { hasText: QUESTION }).waitFor({ timeout: T });
    await other.locator('#timeline .event', { hasText: 'Handoff to an agent requested' }).waitFor({ timeout: T });
    await other.locator('#timeline .event', { hasText: 'declined the offer' }).waitFor({ timeout: T });
    const assignee = await other.textContent('#conv-assignee');
    assert(assignee.includes('(you)'), `assignee shown as ${assignee}`);
  });

  await check('the customer is told an agent joined', async () => {
    await customer.locator('#sb-chat-messages', { hasText: 'Nico joined the conversation.' }).waitFor({ timeout: T });
    assert(await customer.locator('#sb-chat-queue').isHidden(), 'the queue line is still shown after an agent joined');
  });

  await check('the supervisor view shows the answered contact and the load live', async () => {
    const otherId = pages.other === expert ? people.expert.id : people.novice.id;
    await waitUntil('the accepting agent to hold one chat', async () => {
      const load = await lead.locator(`#agents-body tr[data-agent="${otherId}"] td:nth-child(5)`).textContent();
      return load.trim().startsWith('1 /');
    });
    await waitUntil('the queue to count an answered contact', async () => {
      const rows = await lead.$$eval('#queues-body tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      return rows.some((r) => Number(r[4]) >= 1);
    });
    await lead.screenshot({ path: '/tmp/switchboard-supervisor.png', fullPage: true });
  });

  await check('a supervisor sets an agent away from the live view', async () => {
    const sel = lead.locator(`#agents-body tr[data-agent="${people.novice.id}"] select`);
    await sel.selectOption('away');
    await lead.locator(`#agents-body tr[data-agent="${people.novice.id}"] td.state-away`).waitFor({ timeout: T });
  });

  await done();
}

main().catch((err) => fail('unexpected error', err));
