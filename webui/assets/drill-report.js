// eewgate web UI: the drill report (訓練記録) — one drill's record, channel by channel:
// what the engine ordered (expected), what the output did and what was seen (observed),
// the result and the timings, with a header (appliance and site, the drill, start and
// end, the operator, the overall result) and a print button (the print CSS gives a clean
// page for the browser's "save as PDF"). Also the list of past drills on the Tests page.
// Uses app.js's helpers; data is inserted as text only.
'use strict';

Object.assign(I18N.ja, {
  dr_title: '訓練記録', dr_print: '印刷 / Print', dr_back: 'テスト・訓練に戻る', dr_loading: '読み込み中…',
  dr_not_found: 'この訓練は履歴にありません（保存期間を過ぎた可能性があります）。',
  dr_appliance: '装置', dr_site: '設置場所', dr_drill: '訓練', dr_event: '地震ID（訓練）', dr_started: '開始', dr_ended: '終了',
  dr_duration: '所要時間', dr_operator: '実施者', dr_operator_none: '監査記録なし', dr_result: '総合結果', dr_settings: '出力の設定',
  dr_settings_at_drill: '訓練時の設定', dr_settings_current: '現在の設定（訓練時の設定を読めませんでした）', dr_printed: '出力日時',
  dr_kind_synthetic: '想定の訓練', dr_kind_recorded: '過去の地震の再生', dr_class: '震度', dr_reports: '報',
  dr_running: '実施中', dr_end_reset: 'リセット', dr_end_cancel: '取消', dr_end_expiry: '失効', dr_end_interrupted: '中断（設定の適用・再起動）',
  dr_col_channel: '出力', dr_col_expected: '予定の動作（判断時刻）', dr_col_observed: '観測した結果', dr_col_result: '結果', dr_col_timings: '時間',
  dr_r_ok: '正常', dr_r_failed: '異常', dr_r_not_observed: '未確認（結果の記録なし）', dr_r_pending: '確認中', dr_r_not_triggered: '動作条件に達せず',
  dr_r_not_included: '訓練に含めない', dr_o_ok: '正常', dr_o_failed: '異常', dr_o_in_progress: '実施中', dr_o_pending: '確認中',
  dr_o_nothing_operated: '動作した出力なし',
  dr_x_disabled: '設定で無効', dr_x_not_in_drills: '「ドリルを含める」が無効', dr_x_not_configured: '接続先の設定なし',
  dr_nothing: '予定の動作なし', dr_not_observed: '結果の記録なし', dr_unmatched: '予定にない結果',
  dr_a_on: '接点を閉', dr_a_off: '接点を開', dr_a_announce: '放送', dr_a_countdown: 'カウントダウン', dr_a_stop: '放送停止',
  dr_a_led: 'LED表示', dr_a_publish: 'MQTT送信', dr_pulse: 'パルス', dr_latency: '判断→動作', dr_latency_max: '最大',
  dr_closed: '閉時間', dr_played: '放送時間', dr_span: '最初の判断→最後の動作', dr_first: '最初', dr_last: '最後',
  dr_evidence: '確認', dr_past: '過去の訓練', dr_past_none: '訓練の記録はまだありません。', dr_open: '訓練記録',
  dr_open_started: '訓練記録を開く', dr_more: 'さらに表示', dr_warning: '警報',
});
Object.assign(I18N.en, {
  dr_title: 'Drill report', dr_print: '印刷 / Print', dr_back: 'Back to Tests', dr_loading: 'loading…',
  dr_not_found: 'This drill is not in history (it may have been purged).',
  dr_appliance: 'Appliance', dr_site: 'Site', dr_drill: 'Drill', dr_event: 'Event (drill)', dr_started: 'Started', dr_ended: 'Ended',
  dr_duration: 'Duration', dr_operator: 'Operator', dr_operator_none: 'no audit entry', dr_result: 'Overall result', dr_settings: 'Output settings',
  dr_settings_at_drill: 'as in force at the drill', dr_settings_current: 'current file (the drill\'s could not be read)', dr_printed: 'Printed',
  dr_kind_synthetic: 'synthetic drill', dr_kind_recorded: 'recorded earthquake replayed', dr_class: 'intensity', dr_reports: 'reports',
  dr_running: 'running', dr_end_reset: 'reset', dr_end_cancel: 'cancel', dr_end_expiry: 'expiry', dr_end_interrupted: 'interrupted (settings applied or restart)',
  dr_col_channel: 'Channel', dr_col_expected: 'Expected (decided at)', dr_col_observed: 'Observed', dr_col_result: 'Result', dr_col_timings: 'Timings',
  dr_r_ok: 'ok', dr_r_failed: 'FAILED', dr_r_not_observed: 'NOT OBSERVED (no result recorded)', dr_r_pending: 'pending', dr_r_not_triggered: 'not triggered',
  dr_r_not_included: 'not included in drills', dr_o_ok: 'ok', dr_o_failed: 'FAILED', dr_o_in_progress: 'in progress', dr_o_pending: 'pending',
  dr_o_nothing_operated: 'no output operated',
  dr_x_disabled: 'disabled in the settings', dr_x_not_in_drills: '"include drills" is off', dr_x_not_configured: 'nothing configured to deliver to',
  dr_nothing: 'nothing ordered', dr_not_observed: 'no result recorded', dr_unmatched: 'results without an order',
  dr_a_on: 'close contact', dr_a_off: 'open contact', dr_a_announce: 'announce', dr_a_countdown: 'countdown', dr_a_stop: 'stop voice',
  dr_a_led: 'LED pattern', dr_a_publish: 'MQTT publish', dr_pulse: 'pulse', dr_latency: 'decision→effect', dr_latency_max: 'max',
  dr_closed: 'closed for', dr_played: 'played', dr_span: 'first decision→last effect', dr_first: 'first', dr_last: 'last',
  dr_evidence: 'proof', dr_past: 'Past drills', dr_past_none: 'No drill recorded yet.', dr_open: 'Report',
  dr_open_started: 'Open the drill report', dr_more: 'More', dr_warning: 'warning',
});

// `report`: the one shown; `list`: the past drills (Tests page) and the next page's key.
const DRILLREPORT = { report: null, eventId: null, error: null, timer: null, list: [], next: null, listError: null, listTimer: null };

const drLocale = () => (lang === 'ja' ? 'ja-JP' : 'en-GB');

/** "2026-12-04 12:00:03" (JST), or the time only with `timeOnly`, to the millisecond. */
function drTime(iso, timeOnly) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(d)) parts[p.type] = p.value;
  const time = `${parts.hour}:${parts.minute}:${parts.second}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  return timeOnly ? time : `${parts.year}-${parts.month}-${parts.day} ${time}`;
}

/** Microseconds as "0.4 ms" / "12 ms" / "1.2 s". */
function drUs(us) {
  if (typeof us !== 'number') return '—';
  const ms = us / 1000;
  if (ms < 10) return (Math.round(ms * 10) / 10) + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (Math.round(ms / 100) / 10) + ' s';
}

function drMs(ms) {
  if (typeof ms !== 'number') return '—';
  return ms < 1000 ? Math.round(ms) + ' ms' : (Math.round(ms / 100) / 10) + ' s';
}

const drKey = (prefix, code) => (code && I18N.en[prefix + code] ? t(prefix + code) : String(code || ''));

/** What one order says: "close contact (pulse 3000 ms)", "LED pattern: exercise", … */
function drWhat(e) {
  const w = e.what || {};
  let text = drKey('dr_a_', e.action);
  if (e.action === 'on' && typeof w.pulse_ms === 'number') text += ' (' + t('dr_pulse') + ' ' + w.pulse_ms + ' ms)';
  if (e.action === 'led' && w.pattern) text += ': ' + (I18N.en['led_' + w.pattern] ? t('led_' + w.pattern) : w.pattern);
  if (e.action === 'publish' && w.state) text += ': ' + w.state;
  if (e.action === 'countdown' && typeof w.seconds === 'number') text += ' ' + w.seconds;
  if (e.action === 'announce') {
    const spoken = lang === 'ja' ? w.text_ja : w.text_en;
    if (spoken) text += ': 「' + spoken + '」';
  }
  return text;
}

function drResultBadge(code, prefix) {
  const bad = ['failed', 'not_observed'].includes(code);
  const ok = code === 'ok';
  return el('span', { class: 'dr-result ' + (bad ? 'bad' : ok ? 'ok' : 'warn'), 'data-result': code }, drKey(prefix, code));
}

/** The cells of one channel's row. */
function drChannelRow(c) {
  const title = el('td', { class: 'dr-channel' }, el('strong', {}, c.channel));
  if (c.name) title.append(el('div', {}, c.name));
  if (c.readback === true) title.append(el('div', { class: 'hint' }, t('method_readback')));
  const expected = el('td', { class: 'dr-expected' });
  const observed = el('td', { class: 'dr-observed' });
  // Left out (e.g. MQTT with no broker): what the engine ordered went nowhere, by design.
  const excluded = c.result === 'not_included';
  if (excluded && (c.expected || []).length) observed.append(el('div', { class: 'dr-line hint' }, drKey('dr_x_', c.excluded)));
  for (const e of c.expected || []) {
    expected.append(el('div', { class: 'dr-line' }, el('span', { class: 'dr-at' }, drTime(e.at, true)), ' ', drWhat(e),
      el('span', { class: 'hint' }, ' (' + e.cause + (e.serial ? ' #' + e.serial : '') + ')')));
    const o = e.observed;
    if (excluded && !o) continue;
    if (o) {
      observed.append(el('div', { class: 'dr-line ' + (o.ok ? '' : 'bad') },
        el('span', { class: 'dr-at' }, drTime(o.at, true)), ' ', o.ok ? '✓ ' : '✗ ',
        '+' + drUs(o.latency_us) + ' ', o.detail || ''));
    } else {
      observed.append(el('div', { class: 'dr-line bad' }, '— ' + t('dr_not_observed')));
    }
  }
  if (!(c.expected || []).length) {
    const why = c.excluded ? drKey('dr_x_', c.excluded) : t('dr_nothing');
    expected.append(el('div', { class: 'dr-line hint' }, why));
  }
  for (const o of c.unmatched || []) {
    observed.append(el('div', { class: 'dr-line ' + (o.ok ? '' : 'bad') }, t('dr_unmatched') + ': ' + drTime(o.at, true) + ' ' +
      o.action + ' ' + (o.ok ? '✓ ' : '✗ ') + (o.detail || '')));
  }
  for (const ev of c.evidence || []) {
    const m = typeof ev.measurement_ms === 'number' ? ' ' + drMs(ev.measurement_ms) : '';
    observed.append(el('div', { class: 'dr-line dr-evidence ' + (ev.ok ? '' : 'bad') },
      t('dr_evidence') + ' (' + drKey('method_', ev.method) + ')' + m + ': ' + (ev.ok ? '✓ ' : '✗ ') + (ev.detail || '')));
  }
  const result = el('td', { class: 'dr-res' }, drResultBadge(c.result, 'dr_r_'));
  if (c.problem) result.append(el('div', { class: 'dr-problem' }, c.problem));
  if (c.excluded && excluded) result.append(el('div', { class: 'hint' }, drKey('dr_x_', c.excluded)));
  const tm = excluded ? {} : (c.timings || {});
  const timing = el('td', { class: 'dr-timings' });
  const line = (label, value) => { if (value !== '—') timing.append(el('div', { class: 'dr-line' }, label + ': ' + value)); };
  line(t('dr_latency'), drUs(tm.first_latency_us));
  if (typeof tm.max_latency_us === 'number' && tm.max_latency_us !== tm.first_latency_us) line(t('dr_latency_max'), drUs(tm.max_latency_us));
  line(t('dr_closed'), drMs(tm.closed_ms));
  line(t('dr_played'), drMs(tm.played_ms));
  line(t('dr_span'), drMs(tm.span_ms));
  if (tm.first_action_at) line(t('dr_first'), drTime(tm.first_action_at, true));
  if (tm.last_action_at && tm.last_action_at !== tm.first_action_at) line(t('dr_last'), drTime(tm.last_action_at, true));
  return el('tr', { 'data-channel': c.channel, 'data-result': c.result }, title, expected, observed, result, timing);
}

function drHeader(r) {
  const a = r.appliance || {};
  const site = a.site || null;
  const rows = [];
  const add = (label, ...value) => rows.push(el('tr', {}, el('th', {}, label), el('td', {}, ...value)));
  add(t('dr_appliance'), [a.host, a.version ? 'eewgate ' + a.version : null].filter(Boolean).join(' · ') || '—');
  if (site) add(t('dr_site'), [site.area_name ? site.area_name + ' (' + site.area_code + ')' : site.area_code,
    typeof site.lat === 'number' ? site.lat + ', ' + site.lon : null].filter(Boolean).join(' · '));
  const title = r.recorded_title ? (lang === 'ja' ? r.recorded_title.ja : r.recorded_title.en) : r.recorded;
  const drill = [t('dr_kind_' + r.kind)];
  if (title) drill.push(title);
  if (r.max_class) drill.push(t('dr_class') + ' ' + r.max_class);
  if (r.warning) drill.push(t('dr_warning'));
  if (r.kind === 'recorded' && r.reports) drill.push(r.reports + ' ' + t('dr_reports'));
  add(t('dr_drill'), drill.join(' · '));
  add(t('dr_event'), r.event_id);
  add(t('dr_started'), drTime(r.started_at));
  add(t('dr_ended'), r.running ? t('dr_running') : drTime(r.ended_at) + (r.end ? ' (' + drKey('dr_end_', r.end) + ')' : ''));
  if (typeof r.duration_ms === 'number') add(t('dr_duration'), drMs(r.duration_ms));
  const op = r.operator;
  add(t('dr_operator'), op ? op.who + (op.detail ? ' — ' + op.detail : '') + ' (' + drTime(op.at) + ')' : t('dr_operator_none'));
  const s = r.settings;
  if (s) add(t('dr_settings'), (s.source === 'at_drill' ? t('dr_settings_at_drill') : t('dr_settings_current')) +
    (s.revision ? ' · ' + s.revision : '') + (s.at ? ' · ' + drTime(s.at) : ''));
  const counts = Object.entries(r.counts || {}).map(([k, n]) => drKey('dr_r_', k) + ' ' + n).join(' · ');
  add(t('dr_result'), drResultBadge(r.result, 'dr_o_'), counts ? el('span', { class: 'hint' }, ' ' + counts) : null);
  add(t('dr_printed'), drTime(new Date().toISOString()));
  return el('table', { class: 'dr-head', id: 'dr-head' }, el('tbody', {}, ...rows));
}

function renderDrillReport() {
  const body = $('drill-report-body');
  if (!body) return;
  const back = el('button', { type: 'button', class: 'h-btn no-print', id: 'dr-back' }, t('dr_back'));
  back.addEventListener('click', () => show('tests'));
  const print = el('button', { type: 'button', class: 'h-btn no-print', id: 'dr-print' }, t('dr_print'));
  print.addEventListener('click', () => window.print());
  const bar = el('div', { class: 'dr-bar no-print' }, back, print);
  const r = DRILLREPORT.report;
  if (!r) {
    body.replaceChildren(bar, el('p', { class: DRILLREPORT.error ? 'message' : 'hint' }, DRILLREPORT.error || t('dr_loading')));
    return;
  }
  const head = el('tr', {}, ...['dr_col_channel', 'dr_col_expected', 'dr_col_observed', 'dr_col_result', 'dr_col_timings']
    .map((k) => el('th', {}, t(k))));
  const table = el('table', { class: 'dr-table', id: 'dr-channels' }, el('thead', {}, head),
    el('tbody', {}, ...(r.channels || []).map(drChannelRow)));
  body.replaceChildren(bar, el('h2', { id: 'dr-title' }, t('dr_title') + ' — ' + r.event_id), drHeader(r), table);
}

// While a drill runs (or its last results are on their way) its report is read again.
const DR_REFRESH_MS = 2000;

async function fetchDrillReport(eventId) {
  clearTimeout(DRILLREPORT.timer);
  const r = await api('/api/drills/reports/' + encodeURIComponent(eventId));
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (DRILLREPORT.eventId !== eventId) return; // another report was asked for meanwhile
  if (r.status === 200) { DRILLREPORT.report = r.data; DRILLREPORT.error = null; }
  else DRILLREPORT.error = r.status === 404 ? t('dr_not_found') : apiError(r);
  renderDrillReport();
  const open = !$('view-drill-report').hidden;
  if (open && r.status === 200 && ['in_progress', 'pending'].includes(r.data.result)) {
    DRILLREPORT.timer = setTimeout(() => { if (!$('view-drill-report').hidden) fetchDrillReport(eventId); }, DR_REFRESH_MS);
  }
}

async function openDrillReport(eventId) {
  DRILLREPORT.eventId = eventId;
  DRILLREPORT.report = null;
  DRILLREPORT.error = null;
  message('');
  show('drill-report');
  if (location.hash !== '#drill/' + eventId) window.history.replaceState(null, '', '#drill/' + encodeURIComponent(eventId));
  await fetchDrillReport(eventId);
}

// ---------------------------------------------------------------- past drills (Tests page)

function drillReportsCard() {
  const card = el('div', { id: 'drill-reports', class: 'card drill-reports' }, el('h3', {}, t('dr_past')));
  if (DRILLREPORT.listError) {
    card.append(el('p', { class: 'message' }, DRILLREPORT.listError));
    return card;
  }
  if (!DRILLREPORT.list.length) {
    card.append(el('p', { class: 'hint' }, t('dr_past_none')));
    return card;
  }
  const items = DRILLREPORT.list.map((d) => {
    const title = d.recorded_title ? (lang === 'ja' ? d.recorded_title.ja : d.recorded_title.en) : t('dr_kind_' + d.kind);
    const open = el('button', { type: 'button', class: 'link h-event', 'data-drill-report': d.event_id }, t('dr_open'));
    open.addEventListener('click', () => openDrillReport(d.event_id));
    return el('li', { 'data-event': d.event_id },
      el('span', {}, drTime(d.started_at) + ' · ' + title + (d.max_class ? ' · ' + t('dr_class') + ' ' + d.max_class : '')),
      el('span', {}, drResultBadge(d.result, 'dr_o_'), ' ', open));
  });
  card.append(el('ul', { class: 'rows', id: 'drill-reports-list' }, ...items));
  if (DRILLREPORT.next) {
    const more = el('button', { type: 'button', class: 'link', id: 'drill-reports-more' }, t('dr_more'));
    more.addEventListener('click', () => loadDrillReports(true).then(renderDrillReports));
    card.append(more);
  }
  return card;
}

function renderDrillReports() {
  const old = $('drill-reports');
  if (old) old.replaceWith(drillReportsCard());
  // A drill still running or settling: its result is read again shortly.
  clearTimeout(DRILLREPORT.listTimer);
  const open = DRILLREPORT.list.some((d) => ['in_progress', 'pending'].includes(d.result));
  if (open && !$('view-tests').hidden) {
    DRILLREPORT.listTimer = setTimeout(() => {
      if (!$('view-tests').hidden) loadDrillReports().then((r) => { if (r.status !== 401) renderDrillReports(); });
    }, DR_REFRESH_MS);
  }
}

async function loadDrillReports(more) {
  const q = more && DRILLREPORT.next ? '&before_id=' + DRILLREPORT.next : '';
  const r = await api('/api/drills/reports?limit=20' + q);
  if (r.status === 401) return r;
  if (r.status === 200) {
    DRILLREPORT.list = more ? DRILLREPORT.list.concat(r.data.items || []) : (r.data.items || []);
    DRILLREPORT.next = r.data.next_before_id;
    DRILLREPORT.listError = null;
  } else {
    DRILLREPORT.listError = apiError(r);
  }
  return r;
}

// When a drill starts or ends, the Tests page's list is read again.
let drLastRunning = null;
function drillReportStatus(s) {
  const running = JSON.stringify(((s && s.alert) || {}).running || []);
  if (running === drLastRunning) return;
  const first = drLastRunning === null;
  drLastRunning = running;
  if (!first && !$('view-tests').hidden && $('drill-reports')) {
    loadDrillReports().then((r) => { if (r.status !== 401) renderDrillReports(); });
    // History is written in batches: once more when this change has landed.
    setTimeout(() => loadDrillReports().then((r) => { if (r.status !== 401) renderDrillReports(); }), 1500);
  }
}

PAGES['drill-report'] = {
  open: renderDrillReport,
  lang: () => { if (!$('view-drill-report').hidden) renderDrillReport(); },
  status: drillReportStatus,
  // A link to a report (#drill/<event id>) opens it once logged in.
  fromHash: (address) => {
    const m = /^#drill\/([A-Za-z0-9_-]{1,64})$/.exec(address);
    if (m) openDrillReport(m[1]);
  },
};
