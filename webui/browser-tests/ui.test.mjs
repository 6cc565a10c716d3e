// The eewgate web UI in real headless Chromium: first-boot setup, login, the live
// dashboard, the language toggle and logout, each step checking what a person would see
// and saving full-page screenshots. Plain Node (no test framework), so the daemon's
// system test (daemon/eewgate/tests/system_browser.rs) can run it as one command.
//
// Environment:
//   EEWGATE_URL            the web UI, e.g. http://127.0.0.1:8080 (required)
//   EEWGATE_SETUP_CODE     the first-boot setup code; without it the appliance must be set
//                          up already and the first-boot step is skipped
//   EEWGATE_PASSWORD       the administrator password to set / log in with
//   EEWGATE_ARTIFACTS      where screenshots go (default: ./artifacts)
//   EEWGATE_CHROMIUM       the browser (default: /usr/bin/chromium, Debian's package)
//   EEWGATE_LINKS          comma-separated link names the links card must list as up
//   EEWGATE_LIVE_TIMEOUT_MS  how long to wait for the dashboard to change by itself
//                          (default 60000; 0 skips that check)
//   EEWGATE_EXPECT_CLOSED_RELAYS  after that change, the outputs card must show these
//                          contacts closed (comma-separated relay ids, e.g. "1")
//   EEWGATE_WAIT_MS        how long to wait for anything else to appear (default 15000)
//
// Output: progress on stderr; on stdout a line {"event":"awaiting_live_update"} when the
// dashboard waits for the appliance to change (a harness may feed telegrams then), and
// last one JSON line {"ok":true,"steps":[...],"screenshots":[...]} — or {"ok":false,...}
// with exit status 1 and a FAILED-*.png screenshot on the first failed check.
//
// To add a step: write `async function myStep(t)` using the helpers below and put it in
// STEPS; steps run in order and share one browser page (each starts where the last ended).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const env = process.env;
const BASE = (env.EEWGATE_URL || '').replace(/\/+$/, '');
const SETUP_CODE = env.EEWGATE_SETUP_CODE || '';
const PASSWORD = env.EEWGATE_PASSWORD || 'correct horse battery staple';
const ARTIFACTS = path.resolve(env.EEWGATE_ARTIFACTS || 'artifacts');
const CHROMIUM = env.EEWGATE_CHROMIUM || '/usr/bin/chromium';
const LINKS = (env.EEWGATE_LINKS || '').split(',').map((s) => s.trim()).filter(Boolean);
const LIVE_TIMEOUT_MS = Number(env.EEWGATE_LIVE_TIMEOUT_MS ?? 60000);
const EXPECT_CLOSED = (env.EEWGATE_EXPECT_CLOSED_RELAYS || '').split(',').map((s) => s.trim()).filter(Boolean);
const WAIT_MS = Number(env.EEWGATE_WAIT_MS ?? 15000);

// What a person reads, in both languages. These mirror I18N in webui/assets/app.js on
// purpose: a changed text should be a conscious change here too.
const TEXT = {
  ja: {
    setup_title: '初期設定', sys_version: 'バージョン', drill: 'ドリル', will_act: '動作', wizard_title: '初期設定 2/2', setup_done_next: 'パスワードを設定しました。', password_rule: '10文字以上。', login_title: 'ログイン', current_alert: '現在の警報',
    links: '上位回線', outputs: '出力', recent_alerts: '最近の警報', logout: 'ログアウト',
    live: 'ライブ', up: '接続', ok: '正常', mismatch: 'パスワードが一致しません。',
    setup_done: 'パスワードを設定しました。ログインしてください。',
    wrong_password: 'パスワードが違います。', lang_button: 'English', closed: '動作中',
    method_operator: '操作者の確認', last_verified: '最終動作確認', w_title: '想定地震での動作',
  },
  en: {
    setup_title: 'First-boot setup', login_title: 'Log in', current_alert: 'Current alert',
    links: 'Upstream links', outputs: 'Outputs', recent_alerts: 'Recent alerts', logout: 'Log out',
    live: 'live', up: 'up', ok: 'ok', lang_button: '日本語',
  },
};
const ja = TEXT.ja;
// The contact the drill operates (the only one that includes drills in the test's settings).
const DRILL_RELAY = env.EEWGATE_DRILL_RELAY || '2';
// The contact the self-test step tests (one with pins and no read-back).
const SELFTEST_RELAY = env.EEWGATE_SELFTEST_RELAY || '1';

class Failure extends Error {}

// ------------------------------------------------------------------ helpers

/** Fails the current step with `message` unless `cond`. */
function check(cond, message) {
  if (!cond) throw new Failure(message);
}

/** What the page shows, for failure messages. */
async function describe(page) {
  try {
    return await page.evaluate(() => {
      const vis = (id) => { const e = document.getElementById(id); return e && !e.hidden; };
      const txt = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
      return {
        url: location.href,
        views: [...document.querySelectorAll('section[id^="view-"]')].filter((s) => !s.hidden).map((s) => s.id),
        message: vis('message') ? txt('message') : null,
        conn: txt('conn'),
        lang: document.documentElement.lang,
      };
    });
  } catch (e) {
    return { unavailable: String(e.message || e) };
  }
}

/** Waits until `fn(arg)` is truthy in the page; fails with `what` and the page's state. */
async function until(t, what, fn, arg, timeout = WAIT_MS) {
  try {
    await t.page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Failure(`${what} — not within ${timeout} ms; page: ${JSON.stringify(await describe(t.page))}`);
  }
}

/** Waits until the view `view` ('setup', 'login', 'dash', …: `<section id="view-…">`)
 *  is shown and every other view hidden. */
async function untilView(t, view) {
  await until(t, `only the ${view} view is shown`, (v) => {
    const views = [...document.querySelectorAll('section[id^="view-"]')];
    return views.some((s) => s.id === 'view-' + v) &&
      views.every((s) => s.hidden === (s.id !== 'view-' + v));
  }, view);
}

/** Waits until the message line shows `text` (a string: exactly; a RegExp: matching). */
async function untilMessage(t, text, info) {
  const spec = text instanceof RegExp ? { re: text.source } : { eq: text };
  await until(t, `the message line shows ${text}${info ? ' (as information)' : ' (as an error)'}`, ([s, info]) => {
    const m = document.getElementById('message');
    if (m.hidden || m.getBoundingClientRect().height === 0) return false;
    const got = m.textContent.trim();
    const textOk = s.re !== undefined ? new RegExp(s.re).test(got) : got === s.eq;
    return textOk && m.classList.contains('info') === info;
  }, [spec, Boolean(info)]);
}

/** Text of one element by id. */
async function text(t, id) {
  return (await t.page.locator('#' + id).textContent() || '').trim();
}

/** The rows of a dashboard card list as [label, value] pairs. */
async function rows(t, id) {
  return t.page.evaluate((id) => [...document.querySelectorAll(`#${id} > li`)]
    .map((li) => [...li.children].map((c) => c.textContent.trim())), id);
}

/** A full-page screenshot named after the step (and a detail), kept in the report. */
async function shot(t, detail) {
  const name = `${String(++t.shotCount).padStart(2, '0')}-${t.step}${detail ? '-' + detail : ''}.png`;
  await t.page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
  t.screenshots.push(name);
  return name;
}

async function fillSetup(t, code, password, confirm) {
  const f = t.page.locator('#setup-form');
  await f.locator('input[name=setup_code]').fill(code);
  await f.locator('input[name=password]').fill(password);
  await f.locator('input[name=confirm]').fill(confirm ?? password);
  await f.locator('button[type=submit]').click();
}

async function fillLogin(t, password) {
  const f = t.page.locator('#login-form');
  await f.locator('input[name=password]').fill(password);
  await f.locator('button[type=submit]').click();
}

/** Counts the requests to `pathname` made while `action` runs (and a moment after). */
async function requestsDuring(t, pathname, action) {
  let n = 0;
  const seen = (r) => { if (new URL(r.url()).pathname === pathname) n += 1; };
  t.page.on('request', seen);
  try {
    await action();
    await t.page.waitForTimeout(500);
  } finally {
    t.page.off('request', seen);
  }
  return n;
}

/** The settings page's "what would happen" card: per reference earthquake its id, the
 *  site's class, whether the engine acts, and whether `output` operates. */
async function whatif(t, output) {
  return t.page.evaluate((output) => [...document.querySelectorAll('#settings-whatif .whatif-scenario')].map((d) => {
    const li = d.querySelector(`li[data-output="${output}"]`);
    return { id: d.dataset.scenario, cls: d.dataset.class, acted: d.dataset.acted === 'true', fires: Boolean(li) && li.dataset.fires === 'true' };
  }), output);
}

/** Waits until the what-if card has an answer newer than `afterSeq`, for the draft
 *  (`draft` true) or the settings in force; returns its sequence number. */
async function untilWhatIf(t, draft, afterSeq = 0) {
  await until(t, `the what-if card shows ${draft ? 'the draft' : 'the settings in force'}`, ([draft, afterSeq]) => {
    const c = document.getElementById('settings-whatif');
    return c && c.dataset.state === 'ready' && c.dataset.draft === String(draft) && Number(c.dataset.seq) > afterSeq &&
      c.querySelectorAll('.whatif-scenario').length > 0;
  }, [draft, afterSeq]);
  return t.page.evaluate(() => Number(document.getElementById('settings-whatif').dataset.seq));
}

const CLASSES = ['0', '1', '2', '3', '4', '5-', '5+', '6-', '6+', '7'];
/** The site's class reaches `min` (an empty class is none). */
const reaches = (cls, min) => cls !== '' && CLASSES.indexOf(cls) >= CLASSES.indexOf(min);

/** Each scenario's contact operates exactly when the engine acts and the class reaches
 *  the contact's threshold. */
function checkThreshold(scenarios, min, output) {
  check(scenarios.length === 5, `five reference earthquakes in the what-if card (${scenarios.length})`);
  for (const s of scenarios) {
    check(s.fires === (s.acted && reaches(s.cls, min)),
      `${output} ${s.fires ? 'operates' : 'does not operate'} for ${s.id} (class ${s.cls || 'none'}, acted ${s.acted}) with min_class ${min}`);
  }
}

/** Waits for the dashboard to be filled by the status stream. */
async function untilDashboardLive(t, tr) {
  await untilView(t, 'dash');
  await until(t, `the connection indicator says "${tr.live}"`, (live) => {
    const c = document.getElementById('conn');
    return c.classList.contains('live') && c.textContent.trim() === live;
  }, tr.live);
  await until(t, 'the links, outputs and alert cards are filled', () =>
    document.querySelectorAll('#links > li').length > 0 &&
    document.querySelectorAll('#outputs > li').length > 0 &&
    document.getElementById('alert-body').textContent.trim() !== '');
}

/** What changes when the appliance's alerts change: the current-alert card (without the
 *  countdown, which ticks by itself) and the recent alerts list. */
function alertSnapshot() {
  const card = document.getElementById('alert');
  const body = card.cloneNode(true);
  for (const c of body.querySelectorAll('#countdown')) c.remove();
  const recent = [...document.querySelectorAll('#recent > li')].map((li) => li.textContent.trim());
  return JSON.stringify({ cls: card.className, alert: body.textContent.trim(), recent });
}

// -------------------------------------------------------------------- steps

/** a. First boot: only the setup view; a wrong code, a too-short password and differing
 *  passwords are refused visibly; the right code and password set it up. */
async function firstBoot(t) {
  if (!SETUP_CODE) return 'skipped: no EEWGATE_SETUP_CODE';
  const { page } = t;
  await page.goto(BASE + '/');
  await untilView(t, 'setup');
  check(await text(t, 'view-setup').then((s) => s.includes(ja.setup_title)), `setup title "${ja.setup_title}" shown`);
  check(await page.locator('#logout').isHidden(), 'no logout button before setup');
  await shot(t, 'setup');

  // A wrong code: the server refuses and the page says so.
  const wrong = SETUP_CODE.startsWith('AAAAA') ? 'BBBBB-BBBBB' : 'AAAAA-AAAAA';
  await fillSetup(t, wrong, PASSWORD);
  await untilMessage(t, /\S/, false);
  await untilView(t, 'setup');
  await shot(t, 'wrong-code');

  // A too-short password: the page refuses it in its own language, nothing is sent.
  const sent = await requestsDuring(t, '/api/setup', () => fillSetup(t, SETUP_CODE, 'short1'));
  check(sent === 0, `a too-short password is not sent (${sent} request(s) to /api/setup)`);
  await untilMessage(t, ja.password_rule, false);
  await untilView(t, 'setup');
  await shot(t, 'short-password');
  // The server refuses it too, should a page not check (and the code stays valid).
  const direct = await page.evaluate(async (code) => {
    const r = await fetch('/api/setup', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ setup_code: code, password: 'short1' }),
    });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, SETUP_CODE);
  check(direct.status === 400, `the server refuses a short password with 400: ${JSON.stringify(direct)}`);

  // Passwords that differ: the page says so before sending.
  await fillSetup(t, SETUP_CODE, PASSWORD, PASSWORD + 'x');
  await untilMessage(t, ja.mismatch, false);

  // The right code and a good password: set up, and on to step 2 (site, links, MQTT).
  await fillSetup(t, SETUP_CODE, PASSWORD);
  await untilView(t, 'settings');
  await untilMessage(t, ja.setup_done_next, true);
  await page.locator('#settings-form').waitFor();
  check((await text(t, 'view-settings')).includes(ja.wizard_title), `the wizard's title "${ja.wizard_title}"`);
  for (const p of ['site.lat', 'prediction.mode', 'mqtt.host']) {
    check(await page.locator(`[data-path="${p}"]`).count() === 1, `the wizard asks for ${p}`);
  }
  check(await page.locator('[data-path^="outputs.relay"]').count() === 0, 'the wizard leaves the contacts for later');
  // The nearest forecast area is suggested from the latitude and longitude.
  await page.locator('#settings-suggest-area').click();
  await until(t, 'an area is suggested', () => document.getElementById('settings-area-hint').textContent.trim().length > 0);
  const area = await page.locator('[name="site.area_code"]').inputValue();
  check(/^\d{3}$/.test(area), `a 3-digit area code is filled in (${area})`);
  // Site mode says plainly that giving its values to others needs a licence.
  await page.locator('[name="prediction.mode"]').selectOption('site');
  check(await page.locator('.note-prediction_mode').isVisible(), 'the licence statement is shown for site mode');
  await page.locator('[name="prediction.mode"]').selectOption({ index: 0 });
  check(await page.locator('.note-prediction_mode').isHidden(), 'and hidden again for area mode');
  await shot(t, 'wizard');
  await page.locator('[name="site.area_code"]').fill('751');
  await page.locator('#settings-save').click();
  await untilView(t, 'dash');
  await shot(t, 'done');
  // Log out: the next step logs in.
  await page.locator('#logout').click();
  await untilView(t, 'login');
  return `setup done (suggested area ${area})`;
}

/** b. Login: a wrong password is refused visibly, the right one opens the dashboard. */
async function login(t) {
  const { page } = t;
  if (!SETUP_CODE) await page.goto(BASE + '/');
  await untilView(t, 'login');
  check(await text(t, 'view-login').then((s) => s.includes(ja.login_title)), `login title "${ja.login_title}" shown`);
  await fillLogin(t, PASSWORD + '-wrong');
  await untilMessage(t, ja.wrong_password, false);
  await untilView(t, 'login');
  await shot(t, 'wrong-password');

  await fillLogin(t, PASSWORD);
  await untilView(t, 'dash');
  await until(t, 'the message line is cleared', () => document.getElementById('message').hidden);
  check(await page.locator('#logout').isVisible(), 'the logout button is shown');
  return 'logged in';
}

/** c. Dashboard: links, outputs, live indicator; it changes by itself; a reload keeps the
 *  session. */
async function dashboard(t) {
  const { page } = t;
  await untilDashboardLive(t, ja);
  const links = await rows(t, 'links');
  for (const name of LINKS) {
    check(links.some(([label, value]) => label === name && value.startsWith(ja.up)),
      `the links card lists "${name}" as ${ja.up}: ${JSON.stringify(links)}`);
  }
  check(links.length > 0, 'the links card lists a link');
  const outputs = await rows(t, 'outputs');
  // Each contact by number and the name it was given, its health translated.
  check(outputs.some(([label, value]) => /^relay:\d+ elevators$/.test(label) && value === ja.ok),
    `the outputs card lists a relay output as healthy: ${JSON.stringify(outputs)}`);
  await shot(t, 'overview');

  let live = 'live update: skipped';
  if (LIVE_TIMEOUT_MS > 0) {
    // The recent list loads on its own request: wait until nothing moves for a second.
    let before = await page.evaluate(alertSnapshot);
    const settle = Date.now() + WAIT_MS;
    for (let quiet = 0; quiet < 10;) {
      check(Date.now() < settle, `the dashboard settles before the live check; it keeps changing: ${before}`);
      await page.waitForTimeout(100);
      const now = await page.evaluate(alertSnapshot);
      quiet = now === before ? quiet + 1 : 0;
      before = now;
    }
    // A page that reloads would lose this mark.
    await page.evaluate(() => { window.__eewgateNoReload = true; });
    process.stdout.write(JSON.stringify({ event: 'awaiting_live_update' }) + '\n');
    const deadline = Date.now() + LIVE_TIMEOUT_MS;
    while (await page.evaluate(alertSnapshot) === before) {
      check(Date.now() < deadline, `the current alert card or the recent alerts change by themselves — not within ${LIVE_TIMEOUT_MS} ms; still ${before}`);
      await page.waitForTimeout(200);
    }
    check(await page.evaluate(() => window.__eewgateNoReload === true), 'the page was not reloaded');
    const after = JSON.parse(await page.evaluate(alertSnapshot));
    live = `live update: ${JSON.parse(before).cls} -> ${after.cls}; alert: ${after.alert.replace(/\s+/g, ' ').slice(0, 80)}`;
    if (EXPECT_CLOSED.length) {
      // Each operated contact's own row says so ("relay:1 elevators" → 動作中).
      await until(t, `the outputs card shows contact(s) ${EXPECT_CLOSED} operated ("${ja.closed}")`,
        ([word, ids]) => ids.every((id) => [...document.querySelectorAll('#outputs > li')].some((li) => {
          const [k, v] = [...li.children].map((c) => c.textContent.trim());
          return (k === 'relay:' + id || k.startsWith('relay:' + id + ' ')) && v === word;
        })), [ja.closed, EXPECT_CLOSED]);
      live += `; closed: ${EXPECT_CLOSED}`;
    }
    await page.waitForTimeout(300); // let the recent list's own request land for the picture
    await shot(t, 'live-update');
  }

  await page.reload();
  await untilDashboardLive(t, ja);
  await shot(t, 'after-reload');
  return live;
}

/** d. The language toggle switches the visible texts, and the choice is kept. */
async function language(t) {
  const { page } = t;
  const visible = async () => ({
    lang: await page.evaluate(() => document.documentElement.lang),
    button: await text(t, 'lang'),
    alert: (await page.locator('#alert h2').textContent()).trim(),
    cards: await page.locator('.grid .card h3').allTextContents(),
    logout: await text(t, 'logout'),
    conn: await text(t, 'conn'),
  });
  const expect = (tr, code) => (v) => v.lang === code && v.button === tr.lang_button &&
    v.alert === tr.current_alert && v.cards.includes(tr.links) && v.cards.includes(tr.outputs) &&
    v.cards.includes(tr.recent_alerts) && v.logout === tr.logout && v.conn === tr.live;
  const isJa = expect(TEXT.ja, 'ja');
  const isEn = expect(TEXT.en, 'en');
  const waitFor = async (pred, what) => {
    const deadline = Date.now() + WAIT_MS;
    let v = await visible();
    while (!pred(v) && Date.now() < deadline) { await page.waitForTimeout(100); v = await visible(); }
    check(pred(v), `${what}: ${JSON.stringify(v)}`);
  };

  await waitFor(isJa, 'the dashboard is in Japanese');
  await page.locator('#lang').click();
  await waitFor(isEn, 'after the toggle the dashboard is in English');
  await shot(t, 'english');
  await page.reload();
  await untilDashboardLive(t, TEXT.en);
  await waitFor(isEn, 'English is kept over a reload');
  await page.locator('#lang').click();
  await waitFor(isJa, 'the toggle switches back to Japanese');
  await shot(t, 'japanese');
  return 'ja -> en -> (reload) en -> ja';
}

/** e. Logout returns to the login view, and the session is gone. */
async function logout(t) {
  const { page } = t;
  await page.locator('#logout').click();
  await untilView(t, 'login');
  check(await page.locator('#logout').isHidden(), 'the logout button is hidden after logout');
  await shot(t, 'login');
  await page.reload();
  await untilView(t, 'login');
  const status = await page.evaluate(async () => (await fetch('/api/session')).status);
  check(status === 401, `the session is gone after logout (GET /api/session: ${status})`);
  return 'logged out';
}

/** Settings: bad values are refused with a message beside each field and nothing is
 *  saved; a threshold change is checked first — the "what would happen" card then
 *  previews the draft, the contact no longer operating for a reference earthquake below
 *  the new threshold — and saved, its diff shown, and applied (the page's "in effect"
 *  line shows the new revision once the daemon has restarted its tasks — after the alert
 *  in progress, if any; the card then shows the saved settings). The audit entry is
 *  checked by the Rust side. */
async function settings(t) {
  const { page } = t;
  await page.locator('#pages [data-view=settings]').click();
  await untilView(t, 'settings');
  await page.locator('#settings-form').waitFor();
  const lat = page.locator('[name="site.lat"]');
  const original = await lat.inputValue();
  await lat.fill('99');
  await page.locator('[name="alert.event_expiry_s"]').fill('5');
  await page.locator('#settings-save').click();
  for (const p of ['site.lat', 'alert.event_expiry_s']) {
    await until(t, `a problem is shown beside ${p}`, (p) => {
      const e = document.querySelector(`[data-path="${p}"] > .field-error`);
      return e && !e.hidden && e.textContent.trim().length > 0;
    }, p);
  }
  check(await page.locator('[data-path="site.lon"] > .field-error').isHidden(), 'a good field shows no problem');
  await shot(t, 'problems');
  const before = await page.evaluate(async () => (await (await fetch('/api/settings')).json()).revision);
  await lat.fill(original);
  await page.locator('[name="alert.event_expiry_s"]').fill('');
  await page.locator('[name="outputs.relay[0].min_class"]').selectOption('5-');
  // The what-if card: with the settings in force contact 1 (from 4) operates where the
  // site reaches 4; the check previews the draft (from 5-), where it no longer does for
  // a reference earthquake between the two — before anything is saved.
  check((await text(t, 'settings-whatif')).includes(ja.w_title), `the what-if card "${ja.w_title}"`);
  const seq = await untilWhatIf(t, false);
  const inForce = await whatif(t, 'relay:1');
  checkThreshold(inForce, '4', 'relay:1');
  await page.locator('#settings-check').click();
  const draftSeq = await untilWhatIf(t, true, seq);
  const drafted = await whatif(t, 'relay:1');
  checkThreshold(drafted, '5-', 'relay:1');
  const dropped = inForce.filter((s) => s.fires && !drafted.find((d) => d.id === s.id).fires).map((s) => s.id);
  check(dropped.length > 0, 'the raised threshold takes contact 1 out of at least one reference earthquake');
  await page.locator('#settings-whatif').scrollIntoViewIfNeeded();
  await shot(t, 'whatif-draft');
  // An operator's own chime: half a second of 880 Hz, 16-bit PCM, uploaded and put in.
  const chime = path.join(ARTIFACTS, 'lobby-chime.wav');
  writeFileSync(chime, wavTone(16000, 0.5, 880));
  await page.locator('#settings-chime-file').setInputFiles(chime);
  await until(t, 'the uploaded chime is put in the chime field', () =>
    /lobby-chime\.wav$/.test(document.querySelector('[name="audio.chime"]').value));
  const saved = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/settings' && r.request().method() === 'PUT');
  await page.locator('#settings-save').click();
  const response = await saved;
  check(response.status() === 200, `the save is accepted (${response.status()})`);
  const body = await response.json();
  check(body.revision !== before, 'the save made a new revision');
  await until(t, 'the saved change is listed with its old and new value', () => {
    const cells = [...document.querySelectorAll('#settings-result table.diff td')].map((c) => c.textContent);
    return cells.includes('outputs.relay[0].min_class') && cells.includes('"4"') && cells.includes('"5-"');
  });
  await shot(t, 'saved');
  await until(t, `the new settings (${body.revision}) are in effect`, (rev) => {
    const p = document.getElementById('settings-state');
    return p && p.textContent.includes(rev);
  }, body.revision, 60000);
  await shot(t, 'applied');
  // What the change touched is listed for proof: contact 1 (its threshold) and the audio
  // (its chime); neither can prove itself here (no read-back, a person must listen), so
  // the page asks for their tests rather than saying they work.
  await until(t, 'the page lists the changed outputs for proof', () => {
    const state = (ch) => (document.querySelector(`#settings-proofs [data-proof="${ch}"]`) || {}).dataset;
    const relay = state('relay:1');
    const audio = state('audio');
    return relay && ['waiting', 'person'].includes(relay.state) && audio && audio.state === 'person';
  });
  // The form was reloaded from the new file: the change is what it now shows.
  const shown = await page.locator('[name="outputs.relay[0].min_class"]').inputValue();
  check(shown === '5-', `the form shows the saved value (${shown})`);
  // And the what-if card, of the settings now in force, agrees with the draft's.
  await untilWhatIf(t, false, draftSeq);
  checkThreshold(await whatif(t, 'relay:1'), '5-', 'relay:1');
  await page.locator('#pages [data-view=dash]').click();
  await untilDashboardLive(t, ja);
  return `saved ${body.revision} (apply: ${body.apply}); what-if: contact 1 no longer for ${dropped.join(', ')}`;
}

/** Tests page: a drill needs the confirmation; it runs labelled as a drill on the
 *  dashboard with a live countdown, operates the contact that includes drills, and the
 *  dashboard's reset ends it. (A real alert refuses drills, so this waits for the
 *  replayed one to end first.) */
async function drill(t) {
  const { page } = t;
  await until(t, 'the real alert of the replay has ended', () =>
    !document.getElementById('alert').classList.contains('alert-real'), null, 60000);
  await page.locator('#pages [data-view=tests]').click();
  await untilView(t, 'tests');
  await page.locator('#drill-start').waitFor();
  check(await page.locator('#drill-start').isDisabled(), 'the start button waits for the confirmation');
  const acts = await rows(t, 'drill-outputs');
  check(acts.some(([k, v]) => k === 'relay:' + DRILL_RELAY && v === ja.will_act),
    `the page says contact ${DRILL_RELAY} operates in a drill: ${JSON.stringify(acts)}`);
  await page.locator('#drill-kind').selectOption('synthetic');
  await page.locator('#drill-class').selectOption('5-');
  await page.locator('#drill-seconds').fill('30');
  await page.locator('#drill-confirm').check();
  await shot(t, 'confirm');
  await page.locator('#drill-start').click();
  await until(t, 'the drill has started', () => {
    const r = document.querySelector('#drill-result .message.info');
    return r && r.textContent.trim().length > 0;
  });
  // Its record is named at once: the link to the drill report.
  const eventId = await page.locator('#drill-report-link').getAttribute('data-drill-report');
  check(/^drill-\d{14}/.test(eventId || ''), `the start names the drill's report (${eventId})`);
  await page.locator('#pages [data-view=dash]').click();
  await untilDashboardLive(t, ja);
  await until(t, 'the dashboard shows the drill, labelled, with its class', (word) => {
    const card = document.getElementById('alert');
    return card.classList.contains('alert-exercise') &&
      document.getElementById('alert-tags').textContent.includes(word) &&
      (document.getElementById('alert-class') || {}).textContent === '5-';
  }, ja.drill);
  const first = await text(t, 'countdown');
  await page.waitForTimeout(2200);
  const second = await text(t, 'countdown');
  const n = (s) => Number.parseInt(s, 10);
  check(n(second) < n(first), `the countdown runs (${first} → ${second})`);
  await until(t, `contact ${DRILL_RELAY} is shown operated`, ([id, word]) =>
    [...document.querySelectorAll('#outputs > li')].some((li) => {
      const [k, v] = [...li.children].map((c) => c.textContent.trim());
      return k.startsWith('relay:' + id) && v === word;
    }), [DRILL_RELAY, ja.closed]);
  await shot(t, 'running');
  page.once('dialog', (d) => d.accept());
  await page.locator('#alert-reset').click();
  await until(t, 'the reset ends the drill', () =>
    document.getElementById('alert').classList.contains('alert-none'));
  await until(t, `contact ${DRILL_RELAY} is released`, ([id, word]) =>
    [...document.querySelectorAll('#outputs > li')].some((li) => {
      const [k, v] = [...li.children].map((c) => c.textContent.trim());
      return k.startsWith('relay:' + id) && v === word;
    }), [DRILL_RELAY, ja.ok]);
  await shot(t, 'reset');
  const report = await drillReport(t, eventId);
  return `drill ran (countdown ${first} → ${second}) and was reset; ${report}`;
}

/** The channels the drill report must list, and each one's result, under the test's
 *  settings: the contact that includes drills and the LED operated and were seen to, the
 *  elevators' contact and the PA leave drills out, MQTT has no broker. */
const DRILL_REPORT_ROWS = {
  'relay:1': 'not_included', ['relay:' + DRILL_RELAY]: 'ok', audio: 'not_included', led: 'ok', mqtt: 'not_included',
};

/** The drill's report from the Tests page's list of past drills: its header says ok, a
 *  row per channel with its result, what was ordered and what was observed; the print
 *  button and a print-media screenshot without the page's navigation. */
async function drillReport(t, eventId) {
  const { page } = t;
  await page.locator('#pages [data-view=tests]').click();
  await untilView(t, 'tests');
  const open = page.locator(`#drill-reports-list li[data-event="${eventId}"] button[data-drill-report]`);
  await open.waitFor();
  await shot(t, 'past-drills');
  await open.click();
  await untilView(t, 'drill-report');
  // Pending for a moment while the last results land; the page reads it again by itself.
  await until(t, 'the report says the drill went well', () => {
    const r = document.querySelector('#dr-head [data-result]');
    return r && r.dataset.result === 'ok';
  }, null, 30000);
  const rows = await page.evaluate(() => [...document.querySelectorAll('#dr-channels tbody tr')].map((tr) => ({
    channel: tr.dataset.channel, result: tr.dataset.result,
    expected: tr.querySelector('.dr-expected').textContent.trim(),
    observed: tr.querySelector('.dr-observed').textContent.trim(),
    timings: tr.querySelector('.dr-timings').textContent.trim(),
  })));
  const got = Object.fromEntries(rows.map((r) => [r.channel, r.result]));
  const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  check(rows.length === Object.keys(DRILL_REPORT_ROWS).length && same(got, DRILL_REPORT_ROWS),
    `a row per channel with its result: ${JSON.stringify(got)}, expected ${JSON.stringify(DRILL_REPORT_ROWS)}`);
  for (const r of rows.filter((r) => r.result === 'ok')) {
    check(r.expected.length > 0 && r.observed.includes('✓') && !r.observed.includes('✗'),
      `${r.channel}: its orders and what was observed: ${JSON.stringify(r)}`);
    check(/ms|µs/.test(r.timings), `${r.channel}: timings: ${r.timings}`);
  }
  const relay = rows.find((r) => r.channel === 'relay:' + DRILL_RELAY);
  check(relay.observed.includes('no read-back'), `the contact without read-back says so: ${relay.observed}`);
  const head = await text(t, 'dr-head');
  check(head.includes(eventId) && head.includes('admin'), `the header names the drill and its operator: ${head}`);
  check(await page.locator('#dr-print').isVisible(), 'a print button');
  await shot(t, 'report');
  // What the browser's "print to PDF" gives: no navigation, black on white.
  await page.emulateMedia({ media: 'print' });
  try {
    const print = await page.evaluate(() => ({
      header: getComputedStyle(document.querySelector('header')).display,
      buttons: getComputedStyle(document.getElementById('dr-print')).display,
      background: getComputedStyle(document.body).backgroundColor,
      rows: document.querySelectorAll('#dr-channels tbody tr').length,
    }));
    check(print.header === 'none' && print.buttons === 'none', `no navigation in print: ${JSON.stringify(print)}`);
    check(print.background === 'rgb(255, 255, 255)', `white paper: ${print.background}`);
    await shot(t, 'report-print');
  } finally {
    await page.emulateMedia({ media: 'screen' });
  }
  await page.locator('#dr-back').click();
  await untilView(t, 'tests');
  await page.locator('#pages [data-view=dash]').click();
  await untilDashboardLive(t, ja);
  return `report ok with ${rows.length} channels (${Object.values(got).join(', ')})`;
}

/** Self-test of a contact without read-back from the Tests page: the button waits for
 *  the confirmation, the row shows the pin's result, asks whether the equipment reacted,
 *  and the operator's answer becomes the contact's last verification. */
async function selfTest(t) {
  const { page } = t;
  await page.locator('#pages [data-view=tests]').click();
  await untilView(t, 'tests');
  const output = 'relay:' + SELFTEST_RELAY;
  const button = page.locator(`button[data-selftest="${output}"]`);
  await button.waitFor();
  check(await button.isDisabled(), 'a contact\'s test waits for the confirmation');
  await page.locator(`input[data-selftest-confirm="${output}"]`).check();
  check(!(await button.isDisabled()), 'the confirmation enables the test');
  await button.click();
  const ask = page.locator(`[data-selftest-ask="${output}"]`);
  await ask.waitFor({ state: 'visible' });
  await shot(t, 'asks');
  await page.locator(`input[data-confirm-note="${output}"]`).fill('elevator hall lamp lit');
  await page.locator(`button[data-confirm="${output}"][data-ok="true"]`).click();
  await until(t, 'the confirmation is recorded', (o) =>
    (document.querySelector(`[data-selftest-state="${o}"]`) || {}).dataset?.phase === 'recorded', output);
  await until(t, 'the last verification is the operator\'s', ([o, word]) =>
    (document.querySelector(`[data-selftest-last="${o}"]`) || { textContent: '' }).textContent.includes(word),
  [output, ja.method_operator]);
  await shot(t, 'recorded');
  // The dashboard now gives the contact's age of proof.
  await page.locator('#pages [data-view=dash]').click();
  await untilView(t, 'dash');
  await until(t, 'the dashboard shows the contact\'s last verification', ([o, word]) => {
    const items = [...document.querySelectorAll('#outputs > li')].map((li) =>
      [...li.children].map((c) => c.textContent.trim()));
    const at = items.findIndex(([k]) => k === o || k.startsWith(o + ' '));
    return at >= 0 && items[at + 1] && items[at + 1][0] === word && /\d/.test(items[at + 1][1]);
  }, [output, ja.last_verified]);
  return `${output} tested and confirmed by the operator; its age shows on the dashboard`;
}

/** History: the received telegrams are listed, a telegram's raw text opens as text, and
 *  the CSV export downloads a file with a header row (and a BOM for spreadsheets). */
async function history(t) {
  const { page } = t;
  await page.locator('#pages [data-view=history]').click();
  await untilView(t, 'history');
  await until(t, 'telegrams are listed', () => document.querySelectorAll('#h-rows tr td button').length > 0);
  const count = await page.locator('#h-rows tr').count();
  await page.locator('#h-rows tr td button.h-btn').last().click();
  await until(t, 'the raw telegram is shown', () => {
    const box = document.getElementById('h-raw');
    const txt = document.getElementById('h-raw-text').textContent;
    return !box.hidden && /<\?xml|Report|9999=/.test(txt);
  });
  await shot(t, 'raw');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#h-csv').click(),
  ]);
  const file = path.join(ARTIFACTS, 'history-export.csv');
  await download.saveAs(file);
  const bytes = readFileSync(file);
  const text = bytes.toString('utf8');
  check(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf, 'the CSV starts with a UTF-8 BOM');
  const lines = text.replace(/^\uFEFF/, '').trim().split('\r\n');
  check(lines[0].startsWith('id,'), `the CSV has a header row: ${lines[0]}`);
  check(lines.length > 1, `the CSV has rows (${lines.length - 1})`);
  check(/\.csv$/.test(download.suggestedFilename()), `a .csv file name (${download.suggestedFilename()})`);
  await page.locator('#pages [data-view=dash]').click();
  await untilDashboardLive(t, ja);
  return `${count} rows shown; exported ${lines.length - 1} rows as ${download.suggestedFilename()}`;
}

/** System: version and uptime shown; the log and the settings file download; a broken
 *  file is refused on import with its problems listed. */
async function system(t) {
  const { page } = t;
  await page.locator('#pages [data-view=system]').click();
  await untilView(t, 'system');
  await until(t, 'the system facts are shown', () => document.querySelectorAll('#system-info > li').length >= 5);
  const facts = await rows(t, 'system-info');
  check(facts.some(([k, v]) => k === ja.sys_version && /^\d+\.\d+\.\d+/.test(v)), `a version: ${JSON.stringify(facts)}`);
  const save = async (id, name) => {
    const [d] = await Promise.all([page.waitForEvent('download'), page.locator('#' + id).click()]);
    const file = path.join(ARTIFACTS, name);
    await d.saveAs(file);
    return readFileSync(file, 'utf8');
  };
  const log = await save('system-logs', 'daemon-log.txt');
  check(log.includes('eewgate started'), `the log download has the daemon's lines (${log.length} bytes)`);
  const settingsFile = await save('system-export', 'settings-export.toml');
  check(settingsFile.includes('[site]'), 'the settings export is the settings file');
  const broken = path.join(ARTIFACTS, 'broken-settings.toml');
  writeFileSync(broken, settingsFile.replace(/lat = [0-9.]+/, 'lat = 99'));
  await page.locator('#system-import-file').setInputFiles(broken);
  await until(t, 'the broken import is refused with its problem', () => {
    const r = document.querySelector('#system-import-result .message');
    return r && r.textContent.includes('site.lat');
  });
  await shot(t, 'import-refused');
  await page.locator('#pages [data-view=dash]').click();
  await untilDashboardLive(t, ja);
  return `log ${log.split('\n').length} lines, export ${settingsFile.length} bytes, broken import refused`;
}

/** A mono 16-bit PCM WAV of a sine tone. */
function wavTone(rate, seconds, hz) {
  const n = Math.round(rate * seconds);
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(2 * rate, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * hz * i / rate)), 44 + 2 * i);
  return b;
}

/** The steps, in order. */
export const STEPS = [
  { name: 'first-boot', run: firstBoot },
  { name: 'login', run: login },
  { name: 'dashboard', run: dashboard },
  { name: 'drill', run: drill },
  { name: 'self-test', run: selfTest },
  { name: 'settings', run: settings },
  { name: 'history', run: history },
  { name: 'system', run: system },
  { name: 'language', run: language },
  { name: 'logout', run: logout },
];

// --------------------------------------------------------------------- main

async function main() {
  if (!BASE) {
    process.stderr.write('EEWGATE_URL is not set (e.g. http://127.0.0.1:8080)\n');
    process.exit(2);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  // A fresh profile every run: no cookies or language choice left from before.
  const profile = mkdtempSync(path.join(tmpdir(), 'eewgate-chromium-'));
  const t = { page: null, step: '', shotCount: 0, screenshots: [], pageErrors: [] };
  const steps = [];
  let context = null;
  let failed = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // Without the background-networking flags Chromium reaches out to Google services,
      // which a closed network refuses; the appliance is loopback only.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      locale: 'ja-JP', // the appliance's first language
      timezoneId: 'Asia/Tokyo',
      viewport: { width: 1280, height: 900 },
    });
    context.setDefaultTimeout(WAIT_MS);
    t.page = context.pages()[0] || await context.newPage();
    t.page.on('pageerror', (e) => t.pageErrors.push(`${t.step}: ${e.message}`));
    t.page.on('console', (m) => {
      // Expected HTTP refusals show here too (401 before login, 403 for a wrong code).
      const where = m.location() && m.location().url ? ` (${m.location().url})` : '';
      if (m.type() === 'error') process.stderr.write(`[page console] ${t.step}: ${m.text()}${where}\n`);
    });
    for (const step of STEPS) {
      t.step = step.name;
      const started = Date.now();
      const detail = await step.run(t);
      check(t.pageErrors.length === 0, `no script errors in the page: ${t.pageErrors.join('; ')}`);
      const ms = Date.now() - started;
      steps.push({ name: step.name, ms, detail: detail || '' });
      process.stderr.write(`step ${step.name}: ok (${ms} ms)${detail ? ' — ' + detail : ''}\n`);
    }
  } catch (e) {
    failed = { step: t.step, error: e instanceof Failure ? e.message : String(e.stack || e) };
    process.stderr.write(`step ${t.step}: FAILED — ${failed.error}\n`);
    if (t.page) {
      try {
        const name = `FAILED-${t.step}.png`;
        await t.page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
        t.screenshots.push(name);
      } catch (_) { /* the browser is gone: the message says enough */ }
    }
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  const report = { ok: !failed, steps, screenshots: t.screenshots, artifacts: ARTIFACTS };
  if (failed) Object.assign(report, failed);
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exitCode = failed ? 1 : 0;
}

// Run when started as a script; importing (to reuse STEPS or the helpers) runs nothing.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();

export { check, until, untilView, untilMessage, untilDashboardLive, text, rows, shot, fillLogin, TEXT };
