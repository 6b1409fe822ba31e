// The console in a real browser (docs/console.md "Tests"): Debian's Chromium, headless, driven
// over the DevTools protocol by puppeteer-core, against a real ihsd with the demo history.
//
//   node tests/browser/console_test.mjs BIN_DIR OUT_DIR
//
// BIN_DIR holds ihs and ihsd; OUT_DIR gets the store, the screenshots (*.png) and results.json
// (the first-screen time of a 5,000-event person, for bench/RESULTS.md). Exits 0 when every
// check holds; prints each check as it passes. Bounded: every wait has a timeout, and the whole
// run stops after 4 minutes. ihsd is started here and ended here, by its PID.
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const [binDir, outDir] = process.argv.slice(2);
if (!binDir || !outDir) {
  console.error('usage: node console_test.mjs BIN_DIR OUT_DIR');
  process.exit(1);
}
const ihs = path.join(binDir, 'ihs');
const ihsd = path.join(binDir, 'ihsd');
const chromium = process.env.IHS_CHROMIUM || '/usr/bin/chromium';
fs.rmSync(outDir, {recursive: true, force: true});
fs.mkdirSync(outDir, {recursive: true});
const data = path.join(outDir, 'store');
const tokens = path.join(outDir, 'tokens');

let server = null;
let browser = null;
const watchdog = setTimeout(() => fail('the browser test ran past 4 minutes'), 240e3);

function fail(why) {
  console.error(`FAIL: ${why}`);
  cleanup();
  process.exit(1);
}
function cleanup() {
  clearTimeout(watchdog);
  if (browser) browser.process()?.kill('SIGKILL');
  if (server && server.exitCode === null) server.kill('SIGTERM');
}
function check(ok, what) {
  if (!ok) fail(what);
  console.log(`ok: ${what}`);
}

// ---- the store: the demo history, a busy person, tokens ----------------------------------------
const today = new Date().toISOString().slice(0, 10);
execFileSync(ihs, ['generate', '--parties', '300', '--days', '28', '--seed', '1', '--ends', today,
  '--data', data], {stdio: ['ignore', 'ignore', 'inherit']});
const busy = [];
const channels = ['email', 'phone', 'chat', 'twitter', 'webForm', 'sms'];
const start = Date.parse(today) - 60 * 86400e3;
for (let i = 0; i < 5000; i++) {
  busy.push(JSON.stringify({
    streamId: 'customer-busy',
    occurredAt: new Date(start + i * 1000e3).toISOString(),
    sourceSystem: 'crm',
    content: {subject: `Message ${i}`, text: `text of message ${i}`},
    touchpoint: {channel: channels[i % channels.length], direction: i % 3 ? 'inbound' : 'outbound',
      type: i % 3 ? 'message' : 'reply'},
  }));
}
execFileSync(ihs, ['append', '--data', data, '--new-ids'], {input: busy.join('\n') + '\n',
  stdio: ['pipe', 'ignore', 'inherit']});
const token = {};
for (const [role, name] of [['reader', 'rita'], ['admin', 'adam'], ['auditor', 'audrey'],
  ['writer', 'wendy']]) {
  const out = execFileSync(ihs, ['token', 'new', '--tokens', tokens, '--role', role, '--name', name,
    '--json']);
  token[role] = JSON.parse(out).token;
}

// ---- ihsd with the console ----------------------------------------------------------------------
server = spawn(ihsd, ['--data', data, '--tokens', tokens, '--listen', '127.0.0.1:0', '--http',
  '127.0.0.1:0'], {stdio: ['ignore', 'pipe', 'inherit']});
const {base, rpc} = await new Promise((resolve, reject) => {
  let out = '', http = '', listen = '';
  const timer = setTimeout(() => reject(new Error(`ihsd did not get ready: ${out}`)), 60e3);
  server.stdout.on('data', (chunk) => {
    out += chunk;
    listen = listen || (out.match(/listening on (\S+)/) || [])[1];
    http = http || (out.match(/http on (\S+)/) || [])[1];
    if (/^ready/m.test(out) && http && listen) {
      clearTimeout(timer);
      resolve({base: `http://${http}`, rpc: listen});
    }
  });
  server.on('exit', (code) => reject(new Error(`ihsd exited with ${code}: ${out}`)));
}).catch((e) => fail(e.message));
console.log(`ihsd: console at ${base}, RPC at ${rpc}`);

browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  protocolTimeout: 60e3,
});
const outsideRequests = [];

async function newPage() {
  const context = await browser.createBrowserContext();  // its own cookies
  const page = await context.newPage();
  page.setDefaultTimeout(15e3);
  await page.setViewport({width: 1280, height: 900});
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outsideRequests.push(r.url());
  });
  page.on('pageerror', (e) => fail(`a script error on the page: ${e.message}`));
  return page;
}
async function login(page, tok) {
  await page.goto(base + '/', {waitUntil: 'load'});
  await page.waitForSelector('#login-form', {visible: true});
  await page.type('#token', tok);
  await page.click('#login-form button');
  await page.waitForFunction(() => document.getElementById('who').textContent !== '');
}
const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
// A screenshot, checked to hold more than an empty page of the same size does.
let blankBytes = 0;
async function shot(page, name) {
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({path: file, fullPage: true});
  const size = fs.statSync(file).size;
  check(size > 1.5 * blankBytes, `screenshot ${name}.png is not empty (${size} bytes, blank ${blankBytes})`);
}
// A request from inside the page, with the session's cookie (and, for POST, its CSRF token).
function fromPage(page, url, body, withCsrf = true) {
  return page.evaluate(async (url, body, withCsrf) => {
    const me = await (await fetch('/api/me')).json();
    const init = body === null ? {} : {method: 'POST', headers: Object.assign(
        {'Content-Type': 'application/json'}, withCsrf ? {'X-CSRF-Token': me.csrf} : {}),
      body: JSON.stringify(body)};
    const r = await fetch(url, init);
    return {status: r.status, body: await r.json()};
  }, url, body, withCsrf);
}

try {
  // ---- logging in ------------------------------------------------------------------------------
  const page = await newPage();
  await page.goto('about:blank');
  blankBytes = (await page.screenshot({fullPage: true})).length;
  await page.goto(base + '/', {waitUntil: 'load'});
  await page.waitForSelector('#login-form', {visible: true});
  await shot(page, 'login');
  await page.type('#token', 'not-a-token');
  await page.click('#login-form button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  check((await text(page, '#login-error')).includes('unknown token'), 'a wrong token is refused');
  const cookieless = await page.evaluate(async () => (await fetch('/api/timeline?party=x')).status);
  check(cookieless === 401, 'the API answers 401 before a login');
  await page.$eval('#token', (e) => { e.value = ''; });
  await login(page, token.reader);
  check((await text(page, '#who')) === 'rita (reader)', 'the reader is logged in');
  const cookies = await page.cookies();
  const session = cookies.find((c) => c.name === 'ihs_session');
  check(session && session.httpOnly && session.sameSite === 'Strict',
      'the session cookie is HttpOnly and SameSite=Strict');

  // ---- finding customer-ada by her Twitter handle -------------------------------------------------
  await page.type('#find', '@ada_lovelace345');
  await page.click('#find-form button');
  await page.waitForSelector('#entries .entry');
  check((await text(page, '#party-name')) === 'customer-ada', 'her Twitter handle finds customer-ada');
  const entries = await page.$$eval('#entries .entry', (lis) => lis.map((li) => li.textContent));
  const email = entries.find((t) => t.includes('email') && t.includes('complaint'));
  const tweet = entries.find((t) => t.includes('twitter') && t.includes('public') &&
      t.includes('complaint'));
  check(email && /answered on twitter after 2d/.test(email),
      'the email complaint shows it was answered on Twitter after two days');
  check(tweet && /Channel switch from email/.test(tweet) && /was unanswered, waiting 2d/.test(tweet),
      'the tweet is marked as a switch from the email, unanswered at the time of the tweet');
  check(!entries.some((t) => t.includes('the product arrived broken')),
      'no message text is shown before it is opened');
  const lanes = await page.$$eval('#lanes text', (ts) => ts.map((t) => t.textContent));
  check(['email', 'twitter', 'webForm'].every((c) => lanes.includes(c)), 'the lanes name the channels');
  check(lanes.filter((t) => /^\d{4}-\d\d-\d\d/.test(t)).length >= 3, 'the time axis has readable ticks');
  await page.waitForFunction(() => document.getElementById('segments-of').textContent.includes('Segments'));
  check((await text(page, '#segments-of')).includes('churn_risk'), 'her segments are shown');
  await page.waitForFunction(() => document.getElementById('community').textContent !== '');
  check((await text(page, '#community')).includes('Community value'), 'her community value is shown');
  await shot(page, 'person');

  // ---- opening the text is recorded ------------------------------------------------------------------
  const emailIndex = entries.indexOf(email);
  const buttons = await page.$$('#entries .entry');
  await (await buttons[emailIndex].$('button.open-text')).click();
  await page.waitForFunction((i) =>
    document.querySelectorAll('#entries .entry')[i].querySelector('.content') !== null, {}, emailIndex);
  const opened = await page.$$eval('#entries .entry', (lis, i) =>
    lis[i].querySelector('.content').textContent, emailIndex);
  check(opened.includes('the product arrived broken'), 'opening the email shows its text');
  const noCsrf = await fromPage(page, '/api/open', {eventId: '00'.repeat(16)}, false);
  check(noCsrf.status === 403, 'a POST without the CSRF token is refused');

  // ---- the role decides ------------------------------------------------------------------------------
  check(await page.$eval('#erase', (e) => e.hidden), 'a reader sees no erase button');
  check(await page.$eval('#nav-access', (e) => e.hidden), 'a reader sees no access trail');
  const erase = await fromPage(page, '/api/erase', {party: 'customer-ada', reason: 'test'});
  check(erase.status === 403 && erase.body.error.includes('admin'), 'a reader cannot erase');
  const trail = await fromPage(page, '/api/access', null);
  check(trail.status === 403, 'a reader cannot read the access trail');

  // ---- live: an append from the command line shows without reloading ---------------------------------
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  const appendedAt = Date.now();
  execFileSync(ihs, ['append', '--connect', rpc, '--token', token.writer, '--new-ids'], {
    input: JSON.stringify({streamId: 'customer-ada', occurredAt: new Date().toISOString(),
      sourceSystem: 'zendesk', content: {subject: hostile, text: `${hostile} & "quotes"`},
      touchpoint: {channel: 'chat', direction: 'inbound', type: 'complaint'}}) + '\n',
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  await page.waitForSelector('#entries .entry.fresh', {timeout: 10e3});
  const liveMs = Date.now() - appendedAt;
  check(true, `the appended event appeared live, ${liveMs} ms after the append returned`);
  const fresh = await page.$('#entries .entry.fresh');
  await (await fresh.$('button.open-text')).click();
  await page.waitForSelector('#entries .entry.fresh .content');
  const shown = await page.$eval('#entries .entry.fresh .content', (e) => e.textContent);
  check(shown.includes(hostile), 'a hostile subject is shown as text');
  check(await page.evaluate(() => window.__pwned === undefined &&
      document.querySelector('#entries img, #entries script') === null),
  'the hostile subject ran no script and made no element');

  // ---- segments and community pages ------------------------------------------------------------------
  await page.click('a[data-view="segments"]');
  await page.waitForSelector('#segment-table tbody tr');
  const segs = await page.$$eval('#segment-table tbody tr', (rs) => rs.map((r) => r.textContent));
  check(['campaign_engaged', 'churn_risk', 'social_advocates', 'dormant_buyers', 'open_complaint']
      .every((s) => segs.some((r) => r.includes(s))), 'the five segments are listed with counts');
  await page.click('#segment-table tbody tr a');
  await page.waitForFunction(() => document.getElementById('members-title').textContent !== '');
  await shot(page, 'segments');
  await page.click('a[data-view="community"]');
  await page.waitForSelector('#top-table tbody tr');
  await shot(page, 'community');

  // ---- the admin sees the trail of the reader's access ------------------------------------------------
  const admin = await newPage();
  await login(admin, token.admin);
  check(!(await admin.$eval('#nav-access', (e) => e.hidden)), 'an admin sees the access trail');
  await admin.goto(base + '/#/access', {waitUntil: 'load'});
  await admin.waitForSelector('#access-table tbody tr');
  const rows = await admin.$$eval('#access-table tbody tr', (rs) => rs.map((r) => r.textContent));
  check(rows.some((r) => r.includes('rita') && r.includes('customer-ada')),
      'the access trail records that rita opened customer-ada\'s content');
  await shot(admin, 'access');

  // ---- a writer reads no timelines ---------------------------------------------------------------------
  const writer = await newPage();
  await login(writer, token.writer);
  const refused = await fromPage(writer, '/api/timeline?party=customer-ada', null);
  check(refused.status === 403 && refused.body.error.includes('writer'),
      'a writer token is refused timelines, with the reason');

  // ---- a 5,000-event person: the first screen, timed by the browser ------------------------------------
  // A full load of the page (a new URL), timed from the navigation's start to the first entries.
  await page.goto(base + '/?busy#/person/customer-busy', {waitUntil: 'load'});
  await page.waitForFunction(() =>
    document.getElementById('party-name').textContent === 'customer-busy' &&
    document.querySelector('#entries .entry') !== null, {polling: 'mutation'});
  const firstScreen = await page.evaluate(() => performance.now());
  const pageRead = await page.evaluate(() =>
    performance.getEntriesByName('ihs-timeline-page').map((m) => m.duration));
  const count = await page.$$eval('#entries .entry', (lis) => lis.length);
  check(count > 0, `customer-busy shows its first screen (${count} entries)`);
  const firstId = await page.$eval('#entries .entry', (e) => e.dataset.event);
  await page.click('#next-page');
  await page.waitForFunction((id) => document.querySelector('#entries .entry').dataset.event !== id,
    {}, firstId);
  check(true, 'paging goes on past the first page');
  // A zoom is one read: ihsd chooses the range from the summary it reads with the page.
  const timelineReads = [];
  const countReads = (r) => { if (r.url().includes('/api/timeline')) timelineReads.push(r.url()); };
  page.on('request', countReads);
  const rangeBefore = await page.$eval('#range', (e) => e.textContent);
  await page.click('button[data-zoom="7"]');
  await page.waitForFunction((t) => document.getElementById('range').textContent !== t,
    {}, rangeBefore);
  page.off('request', countReads);
  const week = await fromPage(page, '/api/timeline?party=customer-busy&limit=200&days=7', null);
  const shownWeek = await page.$$eval('#entries .entry', (lis) => lis.map((li) => li.dataset.event));
  check(timelineReads.length === 1 && timelineReads[0].includes('days=7'),
    `a zoom to 7 days reads the timeline once (${timelineReads.join(' ')})`);
  check(week.status === 200 && typeof week.body.from === 'number' &&
      // Date.parse keeps milliseconds: compare at that precision.
      week.body.entries.every((e) => Date.parse(e.occurredAt) >= Math.floor(week.body.from / 1000)) &&
      shownWeek.join() === week.body.entries.map((e) => e.eventId).join(),
    `the 7-day zoom shows the entries from the range ihsd chose (${shownWeek.length} entries)`);
  check(outsideRequests.length === 0, `no request left for another host (${outsideRequests.join(' ')})`);
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({
    date: new Date().toISOString(), firstScreenMs: Math.round(firstScreen),
    pageReadMs: pageRead.map(Math.round), liveMs, busyEntriesOnFirstPage: count,
  }) + '\n');
  console.log(`first screen of a 5,000-event person: ${Math.round(firstScreen)} ms; live: ${liveMs} ms`);
} catch (e) {
  fail(e.stack || String(e));
}
cleanup();
console.log('all browser checks passed');
process.exit(0);
