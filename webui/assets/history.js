// eewgate web UI: the history page (received telegrams and alerts, filters, paging,
// raw telegram view, CSV and JSON export). Uses app.js's helpers (api, el, $, t, lang,
// message, show). Data is always inserted as text, never as HTML.
'use strict';

Object.assign(I18N.ja, {
  h_telegrams: '受信電文', h_alerts: '警報', h_from: '開始日', h_to: '終了日', h_event: '地震ID',
  h_verdict: '判定', h_kind: '種別', h_label: '区分', h_all: 'すべて', h_apply: '表示', h_clear: '条件をクリア',
  h_dates_utc: '日付は日本時間の日単位です。表の時刻も日本時間です。',
  h_export: 'ダウンロード（現在の条件、最新から最大10万件）:', h_cut: 'エクスポートは上限で打ち切られました。',
  h_received: '受信時刻 (JST)', h_link: '回線', h_status: '運用', h_serial: '報数', h_format: '形式',
  h_reason: '理由', h_size: 'サイズ', h_show_raw: '原文',
  h_first: '最初の動作 (JST)', h_last: '最後の動作 (JST)', h_max_class: '最大予測震度', h_lp: '長周期階級',
  h_warning: '警報', h_state: '状態', h_actions: '動作数',
  h_v_accepted: '採用', h_v_duplicate: '重複', h_v_rejected: '不正', h_v_garbage: '破損データ',
  h_k_forecast: '予報', h_k_warning: '警報', h_k_cancel: '取消', h_k_delivery_test: '配信試験',
  h_s_normal: '通常', h_s_training: '訓練', h_s_test: '試験',
  h_l_real: '実報', h_l_training: '訓練', h_l_test: '試験', h_l_drill: 'ドリル',
  h_e_cancel: '取消', h_e_expiry: '失効', h_e_reset: 'リセット', h_running: '継続中',
  h_newest: '最新', h_newer: '← 新しい方', h_older: '古い方 →', h_page: 'ページ', h_rows: '件',
  h_none: '該当する記録はありません。', h_loading: '読み込み中…',
  h_raw_title: '電文', h_close: '閉じる', h_bytes: 'バイト',
  h_raw_gone: 'この電文は記録にありません（保存期間を過ぎて削除された可能性があります）。',
  h_raw_note: 'UTF-8 として表示しています（変換できないバイトは � になります）。',
  h_event_filter: 'この地震の電文を表示',
});
Object.assign(I18N.en, {
  h_telegrams: 'Telegrams', h_alerts: 'Alerts', h_from: 'From', h_to: 'To', h_event: 'Event ID',
  h_verdict: 'Verdict', h_kind: 'Kind', h_label: 'Label', h_all: 'all', h_apply: 'Show', h_clear: 'Clear filters',
  h_dates_utc: 'Dates are whole days in JST, as are the times in the table.',
  h_export: 'Download (current filters, newest first, at most 100,000 records):', h_cut: 'The export was cut at its limit.',
  h_received: 'Received (JST)', h_link: 'Link', h_status: 'Status', h_serial: 'Serial', h_format: 'Format',
  h_reason: 'Reason', h_size: 'Size', h_show_raw: 'Raw',
  h_first: 'First action (JST)', h_last: 'Last action (JST)', h_max_class: 'Max. predicted intensity', h_lp: 'Long-period class',
  h_warning: 'Warning', h_state: 'State', h_actions: 'Actions',
  h_v_accepted: 'accepted', h_v_duplicate: 'duplicate', h_v_rejected: 'rejected', h_v_garbage: 'garbage',
  h_k_forecast: 'forecast', h_k_warning: 'warning', h_k_cancel: 'cancel', h_k_delivery_test: 'delivery test',
  h_s_normal: 'normal', h_s_training: 'training', h_s_test: 'test',
  h_l_real: 'real', h_l_training: 'training', h_l_test: 'test', h_l_drill: 'drill',
  h_e_cancel: 'cancelled', h_e_expiry: 'expired', h_e_reset: 'reset', h_running: 'running',
  h_newest: 'Newest', h_newer: '← Newer', h_older: 'Older →', h_page: 'Page', h_rows: 'records',
  h_none: 'No records match.', h_loading: 'Loading…',
  h_raw_title: 'Telegram', h_close: 'Close', h_bytes: 'bytes',
  h_raw_gone: 'This telegram is not in history (retention may have purged it).',
  h_raw_note: 'Shown as UTF-8 (bytes that are not UTF-8 appear as �).',
  h_event_filter: 'Show the telegrams of this event',
});

const H_VERDICTS = ['accepted', 'duplicate', 'rejected', 'garbage'];
const H_KINDS = ['forecast', 'warning', 'cancel', 'delivery_test'];
const H_LABELS = ['real', 'training', 'test', 'drill'];

// The page's state: which table, the filters applied, and where in the keyset paging we
// are (`before` of this page, the `before` of each newer page, the next page's id).
const H = {
  built: false, table: 'telegrams', filters: {}, before: null, newer: [], next: null,
  items: [], seq: 0, errored: false, raw: null, rawSeq: 0,
};

// A JST time as the daemon writes it (`2026-01-31T14:46:45.123+09:00`) without the
// offset; anything else through the browser, in JST.
function hTime(iso) {
  if (!iso) return '';
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)\d*\+09:00$/.exec(String(iso));
  if (m) return m[1] + ' ' + m[2];
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { timeZone: 'Asia/Tokyo' });
}

function hText(v) {
  return v === null || v === undefined ? '' : String(v);
}

function hSelect(name, prefix, values) {
  const s = el('select', { name, id: 'h-' + name },
    el('option', { value: '', 'data-i18n': 'h_all' }, t('h_all')));
  for (const v of values) s.append(el('option', { value: v, 'data-i18n': prefix + v }, t(prefix + v)));
  return s;
}

function hField(key, input, cls) {
  return el('label', cls ? { class: cls } : {}, el('span', { 'data-i18n': key }, t(key)), input);
}

function hButton(key, id, onClick, cls) {
  const b = el('button', { type: 'button', id, class: cls || 'h-btn', 'data-i18n': key }, t(key));
  b.addEventListener('click', onClick);
  return b;
}

function hBuild() {
  const tabs = el('div', { class: 'h-tabs', role: 'tablist' });
  for (const table of ['telegrams', 'alerts']) {
    const b = el('button', { type: 'button', class: 'h-tab', role: 'tab', 'data-table': table, 'data-i18n': 'h_' + table }, t('h_' + table));
    b.addEventListener('click', () => hSwitch(table));
    tabs.append(b);
  }
  const form = el('form', { id: 'h-filters', class: 'h-filters' },
    hField('h_from', el('input', { type: 'date', name: 'from', id: 'h-from' })),
    hField('h_to', el('input', { type: 'date', name: 'to', id: 'h-to' })),
    hField('h_event', el('input', { name: 'event_id', id: 'h-event', maxlength: '64', spellcheck: 'false', autocomplete: 'off', pattern: '[A-Za-z0-9_\\-]{1,64}' })),
    hField('h_verdict', hSelect('verdict', 'h_v_', H_VERDICTS), 'h-for-telegrams'),
    hField('h_kind', hSelect('kind', 'h_k_', H_KINDS), 'h-for-telegrams'),
    hField('h_label', hSelect('label', 'h_l_', H_LABELS), 'h-for-alerts'),
    el('button', { type: 'submit', 'data-i18n': 'h_apply' }, t('h_apply')),
    hButton('h_clear', 'h-clear', () => { form.reset(); hApply(); }));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); hApply(); });
  const exports = el('p', { class: 'h-export' },
    el('span', { 'data-i18n': 'h_export' }, t('h_export')), ' ',
    el('a', { id: 'h-csv', class: 'h-btn', download: '' }, 'CSV'), ' ',
    el('a', { id: 'h-json', class: 'h-btn', download: '' }, 'JSON'));
  const pager = el('div', { class: 'h-pager' },
    hButton('h_newest', 'h-newest', () => { H.before = null; H.newer = []; hLoad(); }),
    hButton('h_newer', 'h-newer', () => { H.before = H.newer.length ? H.newer.pop() : null; hLoad(); }),
    el('span', { id: 'h-where', class: 'hint' }),
    hButton('h_older', 'h-older', () => {
      if (H.next === null) return;
      H.newer.push(H.before);
      H.before = H.next;
      hLoad();
    }));
  const raw = el('div', { id: 'h-raw', class: 'card h-raw', hidden: '' },
    el('div', { class: 'h-raw-head' },
      el('h3', { id: 'h-raw-title' }),
      hButton('h_close', 'h-raw-close', hHideRaw)),
    el('p', { class: 'hint', 'data-i18n': 'h_raw_note' }, t('h_raw_note')),
    el('pre', { id: 'h-raw-text' }));
  $('history-body').replaceChildren(
    tabs, form,
    el('p', { class: 'hint', 'data-i18n': 'h_dates_utc' }, t('h_dates_utc')),
    exports, raw,
    el('div', { class: 'h-scroll' }, el('table', { class: 'h-table', id: 'h-table' }, el('thead', { id: 'h-head' }), el('tbody', { id: 'h-rows' }))),
    pager);
  H.built = true;
}

// The applied filters as query parameters (only those set; the API refuses empty values).
function hParams(extra) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(H.filters)) {
    if (!v) continue;
    if ((k === 'verdict' || k === 'kind') && H.table !== 'telegrams') continue;
    if (k === 'label' && H.table !== 'alerts') continue;
    p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

function hApply() {
  H.filters = {
    from: $('h-from').value, to: $('h-to').value, event_id: $('h-event').value.trim(),
    verdict: $('h-verdict').value, kind: $('h-kind').value, label: $('h-label').value,
  };
  H.before = null; H.newer = [];
  hLoad();
}

function hSwitch(table) {
  H.table = table;
  H.before = null; H.newer = [];
  hHideRaw();
  hLoad();
}

function hHideRaw() {
  H.raw = null;
  $('h-raw').hidden = true;
}

function hRawTitle() {
  const g = H.raw;
  if (g) $('h-raw-title').textContent = t('h_raw_title') + ' #' + g.id + ' · ' + hTime(g.received_at) + ' · ' + hText(g.link);
}

function hChrome() {
  for (const b of document.querySelectorAll('#history-body .h-tab')) {
    const on = b.dataset.table === H.table;
    b.classList.toggle('active', on);
    b.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  for (const e of document.querySelectorAll('#history-body .h-for-telegrams')) e.hidden = H.table !== 'telegrams';
  for (const e of document.querySelectorAll('#history-body .h-for-alerts')) e.hidden = H.table !== 'alerts';
  const base = '/api/history/' + H.table + '/export?';
  $('h-csv').href = base + hParams({ format: 'csv' });
  $('h-json').href = base + hParams({ format: 'json' });
  $('h-newest').disabled = H.before === null;
  $('h-newer').disabled = H.before === null;
  $('h-older').disabled = H.next === null;
  $('h-where').textContent = t('h_page') + ' ' + (H.newer.length + 1) + ' · ' + H.items.length + ' ' + t('h_rows');
}

async function hLoad() {
  const seq = ++H.seq;
  hChrome();
  $('h-rows').replaceChildren(el('tr', {}, el('td', { class: 'hint' }, t('h_loading'))));
  const extra = H.before === null ? {} : { before_id: String(H.before) };
  const r = await api('/api/history/' + H.table + '?' + hParams(extra));
  if (seq !== H.seq) return; // a newer request is on its way
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status !== 200) {
    H.items = []; H.next = null;
    H.errored = true;
    message((r.data && r.data.message) || String(r.status));
    hRender();
    return;
  }
  if (H.errored) { H.errored = false; message(''); }
  H.items = r.data.items || [];
  H.next = r.data.next_before_id === null || r.data.next_before_id === undefined ? null : r.data.next_before_id;
  hRender();
}

function hTag(text, cls) {
  return el('span', { class: 'tag' + (cls ? ' ' + cls : '') }, text);
}

function hEventButton(eventId, table) {
  if (!eventId) return '';
  const b = el('button', { type: 'button', class: 'link h-event', title: t('h_event_filter') }, String(eventId));
  b.addEventListener('click', () => {
    $('h-filters').reset();
    $('h-event').value = String(eventId);
    H.table = table;
    hApply();
  });
  return b;
}

const H_VERDICT_CLASS = { accepted: 'ok', duplicate: '', rejected: 'bad', garbage: 'warn' };

function hTelegramRow(g) {
  const reason = hText(g.reason) + (g.message ? (g.reason ? ': ' : '') + g.message : '');
  const rawButton = el('button', { type: 'button', class: 'h-btn' }, t('h_show_raw'));
  rawButton.addEventListener('click', () => hShowRaw(g));
  const status = g.status && g.status !== 'normal' ? hTag(t('h_s_' + g.status), 'exercise') : hText(g.status && t('h_s_' + g.status));
  return [
    hTime(g.received_at), hText(g.link),
    el('span', { class: H_VERDICT_CLASS[g.verdict] || '' }, g.verdict ? t('h_v_' + g.verdict) : ''),
    g.kind ? t('h_k_' + g.kind) : '', status, hEventButton(g.event_id, 'telegrams'), hText(g.serial),
    hText(g.product || g.format),
    el('span', { class: 'h-reason', title: reason }, reason),
    g.size === undefined || g.size === null ? '' : g.size + ' ' + t('h_bytes'),
    rawButton,
  ];
}

function hAlertRow(a) {
  const state = a.cancelled ? t('h_e_cancel') : a.ended ? t('h_e_' + a.ended) : t('h_running');
  const label = a.label ? hTag(t('h_l_' + a.label), a.label === 'real' ? '' : 'exercise') : '';
  return [
    hTime(a.first_at), hTime(a.last_at), hEventButton(a.event_id, 'telegrams'), label,
    hText(a.max_class), hText(a.max_long_period_class),
    a.warning ? hTag(t('h_warning')) : '', state, hText(a.actions),
  ];
}

const H_COLUMNS = {
  telegrams: ['h_received', 'h_link', 'h_verdict', 'h_kind', 'h_status', 'h_event', 'h_serial', 'h_format', 'h_reason', 'h_size', ''],
  alerts: ['h_first', 'h_last', 'h_event', 'h_label', 'h_max_class', 'h_lp', 'h_warning', 'h_state', 'h_actions'],
};

function hRender() {
  hChrome();
  const cols = H_COLUMNS[H.table];
  $('h-head').replaceChildren(el('tr', {}, ...cols.map((c) => el('th', { scope: 'col' }, c ? t(c) : ''))));
  const rows = H.items.map((item) => {
    const cells = H.table === 'telegrams' ? hTelegramRow(item) : hAlertRow(item);
    return el('tr', {}, ...cells.map((c) => el('td', {}, c)));
  });
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: String(cols.length), class: 'hint' }, t('h_none'))));
  $('h-rows').replaceChildren(...rows);
  hRawTitle();
}

// The raw bytes, fetched as text and shown with textContent: never parsed as HTML.
async function hShowRaw(g) {
  const box = $('h-raw');
  const mine = ++H.rawSeq;
  const still = () => mine === H.rawSeq && H.raw === g; // not replaced or closed meanwhile
  H.raw = g;
  hRawTitle();
  $('h-raw-text').textContent = t('h_loading');
  box.hidden = false;
  let r;
  try {
    r = await fetch('/api/history/telegrams/' + encodeURIComponent(g.id) + '/raw', { credentials: 'same-origin' });
  } catch (e) {
    if (still()) $('h-raw-text').textContent = String(e);
    return;
  }
  if (!still()) return;
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status === 404) { $('h-raw-text').textContent = t('h_raw_gone'); return; }
  if (!r.ok) {
    let why = String(r.status);
    try { why = (await r.json()).message || why; } catch (_) { /* not JSON */ }
    if (still()) $('h-raw-text').textContent = why;
    return;
  }
  const text = await r.text();
  if (!still()) return;
  $('h-raw-text').textContent = text;
  box.scrollIntoView({ block: 'nearest' });
}

PAGES.history = {
  open() {
    if (!H.built) hBuild();
    hLoad();
  },
  // After a language switch the data-i18n labels follow by themselves; the table is
  // drawn again.
  lang() {
    if (H.built) hRender();
  },
};
