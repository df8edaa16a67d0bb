#!/usr/bin/env node
// Browser journey for the knowledge base and the virtual agent: a knowledge
// manager writes and publishes an article at /kb (and tries a question); a
// customer asks about it in the widget and gets the answer with its source;
// the customer asks for a person, and the agent who accepts the offer sees
// the bot's turns, the cited article and the handoff's context in the inbox.
//
// Environment: SWITCHBOARD_URL, KM_EMAIL, AGENT_EMAIL, PASSWORD (accounts on the
// server under test, which runs with the virtual agent on), CHROMIUM, HEADED=1.

import { chromium } from 'playwright-core';
import { harness } from './harness.mjs';

const BASE = (process.env.SWITCHBOARD_URL || 'http://127.0.0.1:18080').replace(/\/+$/, '');
const KM_EMAIL = process.env.KM_EMAIL;
const AGENT_EMAIL = process.env.AGENT_EMAIL;
const PASSWORD = process.env.PASSWORD;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T = 30000;
const TITLE = 'Lost and found at Harbour Street';
const BODY = '# Lost and found\n\nItems left in the Harbour Street shop are kept for 45 days.\nYou can collect them at the service desk with a photo ID.\n';
const QUESTION = 'How long do you keep items left in the Harbour Street shop?';
const { log, fail, check, assert, done, pages, setBrowser } = harness('kb');

async function signIn(page, email) {
  await page.goto(`${BASE}/login`);
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(/\/(inbox|kb)/, { timeout: T }), page.click('#login-submit')]);
}

async function main() {
  if (!KM_EMAIL || !AGENT_EMAIL || !PASSWORD) {
    console.error('Set KM_EMAIL, AGENT_EMAIL and PASSWORD.');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  setBrowser(browser);
  const page = async (key) => {
    const c = await browser.newContext({ viewport: { width: 1366, height: 820 } });
    const p = await c.newPage();
    pages[key] = p;
    p.on('pageerror', (e) => log(`page error on ${key}: ${e.message}`));
    return p;
  };
  const km = await page('km');
  const agent = await page('agent');
  const customer = await page('customer');

  await check('the knowledge manager signs in and lands on /kb', async () => {
    await signIn(km, KM_EMAIL);
    await km.waitForURL(/\/kb$/, { timeout: T });
    await km.locator('#new-article').waitFor({ state: 'visible', timeout: T });
  });

  await check('the knowledge manager writes and publishes an article', async () => {
    await km.click('#new-article');
    await km.fill('#title', TITLE);
    await km.selectOption('#lang', 'en');
    await km.fill('#tags', 'stores');
    await km.fill('#body', BODY);
    await km.click('#save-publish');
    await km.locator('#flash', { hasText: 'Saved and published' }).waitFor({ timeout: T });
    await km.locator('#articles', { hasText: TITLE }).waitFor({ timeout: T });
  });

  await check('"Try a question" shows the passage, the decision and the answer', async () => {
    await km.fill('#question', QUESTION);
    await km.click('#try-form button[type="submit"]');
    await km.locator('#passages .passage', { hasText: TITLE }).first().waitFor({ timeout: T });
    await km.locator('#bot-answer:not([hidden])').waitFor({ timeout: T });
    const decision = await km.textContent('#bot-decision');
    const reply = await km.textContent('#bot-reply');
    assert(decision === 'answer', `decision was ${decision}`);
    assert(reply.includes('45 days'), `reply lacks the fact: ${reply}`);
  });

  await check('the agent signs in and is Available', async () => {
    await signIn(agent, AGENT_EMAIL);
    await agent.locator('#presence-control').waitFor({ state: 'visible', timeout: T });
    await agent.selectOption('#presence', 'available');
    await agent.locator('#flash', { hasText: 'Status: available' }).waitFor({ timeout: T });
  });

  await check('a customer asks in the widget and gets the answer from the article', async () => {
    await customer.goto(`${BASE}/demo`);
    await customer.click('#sb-chat-launcher');
    await customer.fill('#sb-chat-input', QUESTION);
    await customer.click('#sb-chat-send');
    const bot = customer.locator('#sb-chat-messages .sb-from-bot');
    await bot.first().waitFor({ timeout: T });
    const text = await bot.first().textContent();
    assert(text.includes('45 days'), `the bot's answer lacks the fact: ${text}`);
    assert(text.includes(TITLE), `the bot's answer does not cite the article: ${text}`);
  });

  await check('the customer asks for a person; the agent gets the offer and accepts', async () => {
    await customer.fill('#sb-chat-input', 'Can I talk to a human agent please?');
    await customer.click('#sb-chat-send');
    await agent.locator('#offers .offer').waitFor({ timeout: T });
    await agent.click('#offers .offer button.accept');
    await customer.locator('#sb-chat-messages', { hasText: 'joined the conversation' }).waitFor({ timeout: T });
  });

  await check('the agent sees the bot turns, the cited article and the handoff context', async () => {
    await agent.locator('#timeline .event', { hasText: QUESTION }).first().waitFor({ timeout: T });
    await agent.locator('#timeline .event', { hasText: /Virtual agent: answer .*cited: Lost and found/ }).first().waitFor({ timeout: T });
    await agent.locator('#timeline .event', { hasText: /Virtual agent: escalate/ }).first().waitFor({ timeout: T });
    await agent.locator('#timeline .event', { hasText: /Handoff to an agent requested.*reason: customer request.*language: en/ }).first().waitFor({ timeout: T });
    await agent.screenshot({ path: '/tmp/switchboard-inbox-handoff.png', fullPage: true });
  });

  await done();
}

main().catch((err) => fail('unexpected error', err));
