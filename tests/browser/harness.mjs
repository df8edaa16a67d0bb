// The small test harness the browser journeys share: numbered checks that stop
// at the first failure with screenshots of every open page, and polling waits
// that report what they last saw. No test runner: a journey prints
// "N passed, 0 failed" and exits 0, or exits 1 on the first failed check.

export function harness(label) {
  const started = Date.now();
  const pages = {};
  let passed = 0;
  let browser = null;

  function log(msg) {
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  }

  async function fail(name, err) {
    console.error(`\nFAILED: ${name}\n  ${String((err && err.message) || err).split('\n').join('\n  ')}`);
    for (const [key, page] of Object.entries(pages)) {
      if (page && !page.isClosed()) {
        const file = `/tmp/switchboard-${label}-failure-${key}.png`;
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.error(`  screenshot of ${key}: ${file}`);
      }
    }
    console.log(`${passed} passed, 1 failed`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
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

  // Polls until fn() returns a truthy value; on timeout the last value is reported.
  async function waitUntil(desc, fn, timeout = 20000) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        last = await fn();
        if (last) return last;
      } catch (e) {
        last = `error: ${e.message}`;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${desc}; last: ${JSON.stringify(last ?? null)}`);
      await pause(150);
    }
  }

  async function done() {
    console.log(`${passed} passed, 0 failed`);
    if (browser) await browser.close();
    process.exit(0);
  }

  return {
    log,
    fail,
    check,
    assert,
    pause,
    waitUntil,
    done,
    pages,
    setBrowser: (b) => {
      browser = b;
    },
  };
}
