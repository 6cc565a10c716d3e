// eewgate web UI: setup, login and the live dashboard. No dependencies, no inline code
// (the Content-Security-Policy forbids it). Data is always inserted as text, never HTML.
'use strict';

const I18N = {
  ja: {
    connecting: '接続中', live: 'ライブ', lost: '切断', logout: 'ログアウト',
    setup_title: '初期設定 1/2: 管理者パスワード', setup_intro: '管理者パスワードを設定します。セットアップコードは本機のコンソール（ログ）に表示されています。',
    setup_code: 'セットアップコード', new_password: '新しいパスワード', confirm_password: 'パスワード（確認）',
    password_rule: '10文字以上。', set_password: 'パスワードを設定', mismatch: 'パスワードが一致しません。',
    setup_done: 'パスワードを設定しました。ログインしてください。', setup_done_next: 'パスワードを設定しました。',
    login_title: 'ログイン', password: 'パスワード', login: 'ログイン',
    current_alert: '現在の警報', no_alert: '警報なし', s_arrival: '主要動到達まで', arrived: '到達済み',
    seconds: '秒', imminent: 'まもなく／到達', predicted_class: '予測震度', event: '地震ID', warning: '警報',
    links: '上位回線', time_sync: '時刻同期', watchdog: 'ウォッチドッグ', storage: '記録',
    outputs: '出力', recent_alerts: '最近の警報', updated: '最終更新',
    up: '接続', down: '切断', fault: '異常', ok: '正常', yes: 'あり', no: 'なし',
    synchronised: '同期', not_synchronised: '非同期', unknown: '不明', error_bound: '誤差上限',
    last_sync: '前回同期', offset: '配信遅延＋時刻差', last_telegram: '最終受信', last_alive: '最終応答', latency: '発表から受信まで',
    systemd: 'systemd', hardware: 'ハードウェア', progressing: '処理継続',
    history_ok: '記録中', dropped: '取りこぼし', overdue: '検証期限切れ', none: 'なし',
    all_links_down: '全回線断', closed_relays: '動作中の接点', led: 'LED',
    real: '実報', training: '訓練', test: '試験', drill: 'ドリル',
    plum: 'PLUM法', deep: '深発', level_method: 'レベル法', single_station: '1点観測', assumed_hypocenter: '仮定震源',
    cancelled: '取消', ended: '終了', running: '継続中', s_ago: '秒前', m_ago: '分前', h_ago: '時間前',
    wrong_password: 'パスワードが違います。', rate_limited: '失敗が続いたため一時的に制限しています。',
    session_expired: 'セッションが切れました。再度ログインしてください。',
    nav_dash: 'ダッシュボード', nav_settings: '設定', nav_history: '履歴', closed: '動作中',
    led_normal: '正常', led_alert: '警報', led_exercise: '訓練・ドリル', led_fault: '回線・時刻異常', led_internal_fault: '内部異常', led_verification_overdue: '検証期限切れ', led_time_fault: '時刻異常', led_upstream_fault: '回線異常',
    led_lamp_test: 'ランプテスト中', last_verified: '最終動作確認', never_verified: '動作確認なし', proof_failed: '動作確認で異常',
    assurance: '動作確認', banner_title: '動作が確認できていない出力があります', banner_go_tests: 'テスト・訓練ページで確認する',
    overdue_since: '確認期限切れ', due_in: '期限まで', d_ago: '日前', d_left: '日', h_left: '時間', m_left: '分',
    ch_upstream: 'JMA からの経路（配信テスト）', ch_time: '時刻同期', ch_watchdog: 'ウォッチドッグ', ch_storage: '履歴の記録',
    end_cancel: '取消', end_expiry: '失効', end_reset: 'リセット', more_history: '履歴をすべて見る',
    err_wrong_setup_code: 'セットアップコードが違います（本機のコンソールに表示されています）。', err_weak_password: 'パスワードは10文字以上256文字以下にしてください。',
    err_already_set_up: 'パスワードは設定済みです。ログインしてください。', err_bad_credentials: 'パスワードが違います。', err_setup_required: '初期設定が必要です。',
    settings_title: '設定', history_title: '履歴',
  },
  en: {
    connecting: 'connecting', live: 'live', lost: 'disconnected', logout: 'Log out',
    setup_title: 'First-boot setup 1/2: administrator password', setup_intro: 'Set the administrator password. The setup code is printed on the appliance\'s console (log).',
    setup_code: 'Setup code', new_password: 'New password', confirm_password: 'Confirm password',
    password_rule: 'At least 10 characters.', set_password: 'Set password', mismatch: 'The passwords differ.',
    setup_done: 'Password set. Please log in.', setup_done_next: 'Password set.',
    login_title: 'Log in', password: 'Password', login: 'Log in',
    current_alert: 'Current alert', no_alert: 'No alert', s_arrival: 'S-wave arrival in', arrived: 'arrived',
    seconds: 's', imminent: 'imminent / arrived', predicted_class: 'Predicted intensity', event: 'Event', warning: 'Warning',
    links: 'Upstream links', time_sync: 'Time sync', watchdog: 'Watchdog', storage: 'Storage',
    outputs: 'Outputs', recent_alerts: 'Recent alerts', updated: 'Updated',
    up: 'up', down: 'down', fault: 'fault', ok: 'ok', yes: 'yes', no: 'no',
    synchronised: 'synchronised', not_synchronised: 'not synchronised', unknown: 'unknown', error_bound: 'Error bound',
    last_sync: 'Last sync', offset: 'Delivery + clock offset', last_telegram: 'Last telegram', last_alive: 'Last alive', latency: 'Issue to receipt',
    systemd: 'systemd', hardware: 'Hardware', progressing: 'Progressing',
    history_ok: 'Recording', dropped: 'Dropped', overdue: 'Verification overdue', none: 'none',
    all_links_down: 'ALL LINKS DOWN', closed_relays: 'Closed contacts', led: 'LED',
    real: 'real', training: 'training', test: 'test', drill: 'drill',
    plum: 'PLUM', deep: 'deep', level_method: 'level method', single_station: 'single station', assumed_hypocenter: 'assumed hypocentre',
    cancelled: 'cancelled', ended: 'ended', running: 'running', s_ago: 's ago', m_ago: 'min ago', h_ago: 'h ago',
    wrong_password: 'Wrong password.', rate_limited: 'Too many failed attempts; please wait.',
    session_expired: 'Your session ended. Please log in again.',
    nav_dash: 'Dashboard', nav_settings: 'Settings', nav_history: 'History', closed: 'operated',
    led_normal: 'normal', led_alert: 'alert', led_exercise: 'exercise', led_fault: 'link/time fault', led_internal_fault: 'internal fault', led_verification_overdue: 'verification overdue', led_time_fault: 'time fault', led_upstream_fault: 'link fault',
    led_lamp_test: 'lamp test', last_verified: 'last seen working', never_verified: 'never verified', proof_failed: 'last proof failed',
    assurance: 'Proof of working', banner_title: 'Outputs not proved working', banner_go_tests: 'Prove them on the Tests page',
    overdue_since: 'proof overdue', due_in: 'due in', d_ago: 'd ago', d_left: 'd', h_left: 'h', m_left: 'min',
    ch_upstream: 'path from JMA (delivery test)', ch_time: 'time sync', ch_watchdog: 'watchdog', ch_storage: 'history storage',
    end_cancel: 'cancel', end_expiry: 'expiry', end_reset: 'reset', more_history: 'All history',
    err_wrong_setup_code: 'The setup code is wrong (it is printed on the appliance\'s console).', err_weak_password: 'The password must be 10 to 256 characters.',
    err_already_set_up: 'The password is already set: please log in.', err_bad_credentials: 'Wrong password.', err_setup_required: 'First-boot setup is needed.',
    settings_title: 'Settings', history_title: 'History',
  },
};

let lang = localStorage.getItem('eewgate.lang') || (navigator.language || 'ja').slice(0, 2);
if (!I18N[lang]) lang = 'ja';
const t = (key) => (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;

let csrf = null;
let events = null;
let lastStatus = null;
let lastRunning = null;
let countdownTimer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return e;
}

function applyLang() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  $('lang').textContent = lang === 'ja' ? 'English' : '日本語';
  if (lastStatus) { renderStatus(lastStatus); loadRecent(); }
  for (const p of Object.values(PAGES)) if (p.lang) p.lang();
}

// The pages a logged-in administrator moves between; each page script registers
// `PAGES[name] = { open() }`, called whenever its view is shown.
const PAGES = {};
const LOGGED_IN_VIEWS = ['dash', 'settings', 'history', 'tests', 'system', 'drill-report'];
// A view reached from another page: its tab stays lit.
const PARENT_VIEW = { 'drill-report': 'tests' };

function show(view) {
  for (const v of ['setup', 'login', ...LOGGED_IN_VIEWS]) $('view-' + v).hidden = v !== view;
  const inside = LOGGED_IN_VIEWS.includes(view);
  $('logout').hidden = !inside;
  $('pages').hidden = !inside;
  // The live indicator belongs to the live stream, which only runs when logged in.
  $('conn').hidden = !inside;
  for (const b of document.querySelectorAll('#pages .tab')) b.classList.toggle('active', b.dataset.view === (PARENT_VIEW[view] || view));
  // Only a drill report has an address of its own (#drill/<event id>).
  if (inside && view !== 'drill-report' && location.hash) window.history.replaceState(null, '', location.pathname);
  // The live stream runs on every logged-in page (the settings page shows whether a
  // saved change is applied); it stops at logout.
  if (!inside && events) { events.close(); events = null; }
  if (PAGES[view] && PAGES[view].open) PAGES[view].open();
}

function message(text, info) {
  const m = $('message');
  m.textContent = text || '';
  m.className = info ? 'message info' : 'message';
  m.hidden = !text;
}

async function api(path, method, body) {
  const opts = { method: method || 'GET', credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (opts.method !== 'GET' && csrf) opts.headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, data };
}

async function boot() {
  message('');
  const s = await api('/api/setup/state');
  if (s.status === 200 && s.data.setup_required) { show('setup'); return; }
  const sess = await api('/api/session');
  if (sess.status === 200) {
    const address = location.hash; // the dashboard's view clears it
    csrf = sess.data.csrf_token; startDashboard(); openFromAddress(address);
  } else show('login');
}

// A refusal in the page's language when its code is known, else the server's sentence.
function apiError(r) {
  const code = r.data && r.data.error;
  if (r.status === 429) return t('rate_limited');
  if (code && I18N.en['err_' + code]) return t('err_' + code);
  return (r.data && r.data.message) || String(r.status);
}

async function onSetup(ev) {
  ev.preventDefault();
  message('');
  const f = ev.target;
  if (f.password.value.length < 10) { message(t('password_rule')); return; }
  if (f.password.value !== f.confirm.value) { message(t('mismatch')); return; }
  const password = f.password.value;
  const r = await api('/api/setup', 'POST', { setup_code: f.setup_code.value, password });
  f.password.value = ''; f.confirm.value = '';
  if (r.status !== 200) { message(apiError(r)); return; }
  f.setup_code.value = '';
  // Straight on to the second step (site, links, MQTT) with the password just set.
  const l = await api('/api/login', 'POST', { password });
  if (l.status === 200 && PAGES.settings) {
    csrf = l.data.csrf_token;
    message(t('setup_done_next'), true);
    PAGES.settings.wizard();
  } else {
    show('login');
    message(t('setup_done'), true);
  }
}

async function onLogin(ev) {
  ev.preventDefault();
  message('');
  const f = ev.target;
  const r = await api('/api/login', 'POST', { password: f.password.value });
  f.password.value = '';
  if (r.status === 200) {
    const address = location.hash;
    csrf = r.data.csrf_token; message(''); startDashboard(); openFromAddress(address);
  }
  else if (r.status === 401) message(t('wrong_password'));
  else message(apiError(r));
}

// A page with an address of its own (a drill report's #drill/<event id>) opens from it.
function openFromAddress(address) {
  for (const p of Object.values(PAGES)) if (p.fromHash) p.fromHash(address || '');
}

async function onLogout() {
  await api('/api/logout', 'POST');
  csrf = null; lastStatus = null;
  show('login');
}

function setConn(state) {
  const c = $('conn');
  c.dataset.i18n = state;
  c.textContent = t(state);
  c.className = 'pill ' + state;
}

function startDashboard() {
  show('dash');
  if (events) events.close();
  events = new EventSource('/api/events');
  events.addEventListener('status', (e) => {
    setConn('live');
    try { renderStatus(JSON.parse(e.data)); } catch (_) { /* ignore a bad frame */ }
  });
  events.onerror = async () => {
    setConn('lost');
    // The browser retries by itself; stop if the session is gone.
    const s = await api('/api/session');
    if (s.status === 401) { show('login'); message(t('session_expired')); }
    // A refused stream is not retried by the browser: reconnect while the session lives.
    else if (events && events.readyState === EventSource.CLOSED) setTimeout(startDashboard, 3000);
  };
  loadRecent();
  if (!countdownTimer) countdownTimer = setInterval(tickCountdown, 250);
}

// ---------------------------------------------------------------- rendering

function ago(iso) {
  if (!iso) return t('none');
  const ms = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return s + ' ' + t('s_ago');
  if (s < 7200) return Math.round(s / 60) + ' ' + t('m_ago');
  if (s < 172800) return Math.round(s / 3600) + ' ' + t('h_ago');
  return Math.round(s / 86400) + ' ' + t('d_ago');
}

/** How long until `iso` (a proof's due time), coarsely. */
function dueIn(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  const m = Math.max(0, Math.round((ms - Date.now()) / 60000));
  if (m < 120) return m + ' ' + t('m_left');
  if (m < 2880) return Math.round(m / 60) + ' ' + t('h_left');
  return Math.round(m / 1440) + ' ' + t('d_left');
}

/** A channel's name for people: `relay:1 elevators`, `LED`, `time sync`, … */
function channelLabel(name, names) {
  if (names[name]) return name + ' ' + names[name];
  if (name === 'led') return t('led');
  const key = 'ch_' + name;
  return I18N.en[key] ? t(key) : name;
}

/** An output's proof of working: the age of its last success, or why it is not trusted. */
function verifiedRow(v, overdue) {
  const label = '  ' + t('last_verified');
  if (v && v.last && v.last.ok === false) return row(label, t('proof_failed') + (v.last.detail ? ' — ' + v.last.detail : ''), 'bad');
  if (!v || !v.last_ok_at) return row(label, t('never_verified'), overdue ? 'bad' : 'warn');
  return row(label, ago(v.last_ok_at) + (overdue ? ' — ' + t('overdue_since') : ''), overdue ? 'bad' : '');
}

/** The banner (every channel not trusted now, and why) and the proof-of-working card. */
function renderAssurance(s, names) {
  const verification = s.verification || {};
  const overdue = new Set(s.verification_overdue || []);
  const problems = [];
  for (const [name, v] of Object.entries(verification)) {
    const failed = v.last && v.last.ok === false;
    if (!failed && !overdue.has(name)) continue;
    const why = failed
      ? t('proof_failed') + (v.last.detail ? ' — ' + v.last.detail : '')
      : t('overdue_since') + ' — ' + (v.last_ok_at ? t('last_verified') + ' ' + ago(v.last_ok_at) : t('never_verified'));
    problems.push(el('li', { 'data-channel': name }, el('span', {}, channelLabel(name, names)), el('span', { class: 'bad' }, why)));
  }
  const banner = $('assurance-banner');
  banner.hidden = problems.length === 0;
  $('assurance-problems').replaceChildren(...problems);
  const rows = [];
  for (const [name, v] of Object.entries(verification)) {
    if (!v.due_at) continue;
    const bad = (v.last && v.last.ok === false) || overdue.has(name);
    const seen = v.last_ok_at ? ago(v.last_ok_at) + (v.last_ok_method ? ' (' + v.last_ok_method + ')' : '') : t('never_verified');
    const due = overdue.has(name) ? t('overdue_since') : t('due_in') + ' ' + dueIn(v.due_at);
    rows.push(el('li', { 'data-channel': name }, el('span', {}, channelLabel(name, names)),
      el('span', bad ? { class: 'bad' } : {}, seen + ' · ' + due)));
  }
  fill('assurance', rows.length ? rows : [row(t('none'), '')]);
}

function row(label, value, cls) {
  return el('li', {}, el('span', {}, label), el('span', cls ? { class: cls } : {}, value));
}

function fill(id, rows) { $(id).replaceChildren(...rows); }

function okBad(b, yes, no) {
  if (b === null || b === undefined) return [t('unknown'), 'warn'];
  return b ? [t(yes || 'ok'), 'ok'] : [t(no || 'fault'), 'bad'];
}

function renderStatus(s) {
  lastStatus = s;
  $('updated').textContent = new Date().toLocaleTimeString(lang === 'ja' ? 'ja-JP' : 'en-GB');

  const links = [];
  if (s.all_links_down) links.push(row('', t('all_links_down'), 'bad'));
  for (const [name, l] of Object.entries(s.links || {})) {
    const state = l.fault ? [t('fault'), 'bad'] : l.up ? [t('up'), 'ok'] : [t('down'), 'bad'];
    links.push(row(name, state[0] + (l.down_reason ? ' — ' + l.down_reason : ''), state[1]));
    links.push(row('  ' + t('last_alive'), ago(l.last_alive_at)));
    links.push(row('  ' + t('last_telegram'), ago(l.last_telegram_at)));
    if (l.latency_ms !== null && l.latency_ms !== undefined) links.push(row('  ' + t('latency'), l.latency_ms + ' ms'));
  }
  fill('links', links);

  const tm = s.time || {};
  const sync = okBad(tm.synchronised, 'synchronised', 'not_synchronised');
  const time = [row(t('time_sync'), tm.fault ? t('fault') : sync[0], tm.fault ? 'bad' : sync[1])];
  if (tm.est_error_us !== null && tm.est_error_us !== undefined) time.push(row(t('error_bound'), (tm.est_error_us / 1000).toFixed(1) + ' ms'));
  if (tm.since_last_sync_s !== null && tm.since_last_sync_s !== undefined) time.push(row(t('last_sync'), tm.since_last_sync_s + ' ' + t('s_ago')));
  if (tm.upstream_offset_ms !== null && tm.upstream_offset_ms !== undefined) time.push(row(t('offset'), tm.upstream_offset_ms + ' ms'));
  if (tm.detail) time.push(row('', tm.detail, tm.fault ? 'bad' : ''));
  fill('time', time);

  const wd = s.watchdog || {};
  fill('watchdog', [
    row(t('systemd'), ...okBad(wd.systemd, 'yes', 'no')),
    row(t('hardware'), ...okBad(wd.hardware, 'yes', 'no')),
    row(t('progressing'), ...okBad(wd.progressing)),
  ]);

  const st = s.storage || {};
  const storage = [row(t('history_ok'), ...okBad(st.ok))];
  if (st.detail) storage.push(row('', st.detail, 'bad'));
  if (st.dropped) storage.push(row(t('dropped'), String(st.dropped), 'warn'));
  fill('storage', storage);

  const outs = [];
  const names = s.output_names || {};
  const al = s.alert || {};
  const closed = new Set((al.closed_relays || []).map((id) => 'relay:' + id));
  const verification = s.verification || {};
  for (const [name, health] of Object.entries(s.outputs || {})) {
    const h = String(health);
    const label = names[name] ? name + ' ' + names[name] : name;
    if (name === 'led') outs.push(row(t('led'), t('led_' + h), h === 'normal' ? 'ok' : 'warn'));
    else if (h.startsWith('fault')) outs.push(row(label, t('fault') + h.slice(5), 'bad'));
    else outs.push(row(label, closed.has(name) ? t('closed') : t(h), closed.has(name) ? 'warn' : 'ok'));
    // Only channels delivery assurance ages (not the web UI itself).
    const aged = (verification[name] && verification[name].due_at) || /^(relay:\d+|led|audio|mqtt)$/.test(name);
    if (aged) outs.push(verifiedRow(verification[name], (s.verification_overdue || []).includes(name)));
  }
  fill('outputs', outs.length ? outs : [row(t('none'), '')]);
  renderAssurance(s, names);

  renderAlert(al);
  for (const p of Object.values(PAGES)) if (p.status) p.status(s);
  const cur = al.current || {};
  const key = JSON.stringify([al.running || [], cur.serial, cur.class]);
  if (key !== lastRunning) {
    lastRunning = key;
    loadRecent();
    // History is written in batches: look again once this change has landed.
    setTimeout(loadRecent, 1500);
  }
}

// The current alert: the status model's `alert.current` is the alarm the voice and the
// LED follow ({ event_id, label, class, long_period_class, warning, s_arrival_at,
// imminent, flags, serial, cancelled }); `alert.running` lists every running event.
function renderAlert(al) {
  const cur = al.current || null;
  const running = al.running || [];
  const card = $('alert');
  // Silence and reset while something runs or a contact is held (a reset-only contact).
  card.querySelector('.operator').hidden = !(running.length || (al.closed_relays || []).length);
  if (!cur && running.length === 0) {
    card.className = 'card alert-none';
    $('alert-body').replaceChildren(el('p', { class: 'big ok' }, t('no_alert')));
    return;
  }
  const label = (cur && cur.label) || 'real';
  card.className = 'card ' + (label === 'real' ? 'alert-real' : 'alert-exercise');
  const body = [];
  const tags = el('div', { id: 'alert-tags' });
  tags.append(el('span', { class: label === 'real' ? 'tag' : 'tag exercise' }, t(label)));
  if (cur && cur.warning) tags.append(el('span', { class: 'tag' }, t('warning')));
  if (cur && cur.cancelled) tags.append(el('span', { class: 'tag' }, t('cancelled')));
  const flags = (cur && cur.flags) || {};
  for (const f of ['plum', 'deep', 'level_method', 'single_station', 'assumed_hypocenter']) {
    if (flags[f]) tags.append(el('span', { class: 'tag' }, t(f)));
  }
  body.push(tags);
  if (cur && cur.class !== undefined && cur.class !== null) {
    body.push(el('p', {}, t('predicted_class') + ' ', el('span', { id: 'alert-class', class: 'big' }, String(cur.class))));
  }
  if (cur && cur.imminent) {
    body.push(el('p', { id: 'countdown', class: 'countdown' }, t('imminent')));
  } else if (cur && cur.s_arrival_at) {
    body.push(el('p', {}, t('s_arrival')));
    body.push(el('p', { id: 'countdown', class: 'countdown', 'data-at': String(Date.parse(cur.s_arrival_at)) }, '—'));
  }
  const serial = cur && cur.serial ? ' · #' + cur.serial : '';
  body.push(el('p', { class: 'hint' }, t('event') + ': ' + ((cur && cur.event_id) || running.join(', ')) + serial));
  if (running.length > 1) body.push(el('p', { class: 'hint' }, t('running') + ': ' + running.join(', ')));
  $('alert-body').replaceChildren(...body);
  tickCountdown();
}

function tickCountdown() {
  const c = $('countdown');
  if (!c) return;
  const at = Number(c.dataset.at);
  if (!Number.isFinite(at)) return;
  const left = (at - Date.now()) / 1000;
  c.textContent = left > 0 ? Math.ceil(left) + ' ' + t('seconds') : t('arrived');
}

async function loadRecent() {
  const r = await api('/api/history/alerts?limit=4');
  if (r.status !== 200) return;
  const rows = (r.data.items || []).map((a) => {
    const first = a.first_at || a.first_ms;
    const when = first ? new Date(first).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB') : '';
    const label = a.label && a.label !== 'real' ? ' [' + t(a.label) + ']' : '';
    const state = a.cancelled ? t('cancelled') : a.ended ? t('ended') + ' (' + t('end_' + a.ended) + ')' : t('running');
    const cls = a.max_class ? ' ' + t('predicted_class') + ' ' + a.max_class : '';
    return row(when + label, (a.event_id || '') + cls + ' · ' + state);
  });
  fill('recent', rows.length ? rows : [row(t('none'), '')]);
}

document.addEventListener('DOMContentLoaded', () => {
  $('lang').addEventListener('click', () => {
    lang = lang === 'ja' ? 'en' : 'ja';
    localStorage.setItem('eewgate.lang', lang);
    applyLang();
  });
  $('logout').addEventListener('click', onLogout);
  $('more-history').addEventListener('click', () => show('history'));
  $('banner-tests').addEventListener('click', () => show('tests'));
  for (const b of document.querySelectorAll('#pages .tab')) {
    b.addEventListener('click', () => {
      message(''); // a page's message belongs to that page
      if (b.dataset.view === 'dash') startDashboard(); else show(b.dataset.view);
    });
  }
  $('setup-form').addEventListener('submit', onSetup);
  $('login-form').addEventListener('submit', onLogin);
  applyLang();
  boot();
});
