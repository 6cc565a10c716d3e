// eewgate web UI: the Tests page — drills through every output, clearly labelled, after
// an explicit confirmation (contacts may drive real equipment). Uses app.js's helpers.
'use strict';

Object.assign(I18N.ja, {
  tests_title: 'テスト・訓練', nav_tests: 'テスト・訓練', drill_heading: '訓練（ドリル）',
  drill_recorded: '過去の実際の地震を訓練として再生', drill_synthetic: '想定の訓練',
  drill_event: '地震', drill_class: '震度', drill_seconds: '主要動到達まで (秒)', drill_warning: '警報とする',
  drill_outputs: 'この訓練で動作する出力（設定の「ドリルを含める」）:', drill_none: 'ドリルを含める出力がありません。設定で出力ごとに「ドリルを含める」を有効にしてください。',
  drill_confirm: '接点は実際の設備（エレベーター、ガス、扉、放送設備）を動かすことがあります。関係者に周知したうえで開始します。',
  drill_start: '訓練を開始', drill_started: '訓練を開始しました。すべての出力に「訓練」と表示されます。ダッシュボードで確認できます。',
  drill_disabled_note: '設定で訓練（alert.drill）が許可されていません。', will_act: '動作', will_not_act: '動作しない',
  reports: '報', err_alert_in_progress: '実際の警報が発表中のため、訓練は開始できません。',
  err_drill_disabled: '設定で訓練が許可されていません。', err_confirm_required: '確認にチェックしてください。',
  err_not_running: '設定の適用中です。少し待ってから再度実行してください。',
  silence: '音声停止', reset: '警報リセット', confirm_reset: '実行中の警報をすべて終了し、リセットで復帰する接点を開放します。よろしいですか？',
  confirm_silence: '音声を停止します（接点はそのまま）。よろしいですか？', done: '実行しました。',
});
Object.assign(I18N.en, {
  tests_title: 'Tests and drills', nav_tests: 'Tests', drill_heading: 'Drill',
  drill_recorded: 'Replay a real past earthquake as a drill', drill_synthetic: 'A synthetic drill',
  drill_event: 'Earthquake', drill_class: 'Intensity', drill_seconds: 'S wave in (s)', drill_warning: 'As a warning',
  drill_outputs: 'Outputs this drill operates (each output\'s "include drills"):', drill_none: 'No output includes drills: enable "Include drills" per output in Settings.',
  drill_confirm: 'Contacts may operate real equipment (elevators, gas, doors, the PA). Everyone concerned has been told.',
  drill_start: 'Start the drill', drill_started: 'The drill has started. Every output labels it as a drill; watch it on the dashboard.',
  drill_disabled_note: 'Drills are not allowed by the settings (alert.drill).', will_act: 'operates', will_not_act: 'does not operate',
  reports: 'reports', err_alert_in_progress: 'A real alert is in progress: no drill now.',
  err_drill_disabled: 'Drills are not allowed by the settings.', err_confirm_required: 'Please tick the confirmation.',
  err_not_running: 'New settings are being applied: try again in a moment.',
  silence: 'Silence', reset: 'Reset alert', confirm_reset: 'End every running alarm and open the contacts a reset releases?',
  confirm_silence: 'Stop the voice (contacts stay)?', done: 'Done.',
});

const DRILL_CLASSES = ['3', '4', '5-', '5+', '6-', '6+', '7'];

function drillForm(data) {
  const outputs = el('ul', { id: 'drill-outputs', class: 'rows' });
  const entries = Object.entries(data.outputs || {});
  for (const [name, acts] of entries) outputs.append(row(name, acts ? t('will_act') : t('will_not_act'), acts ? 'warn' : ''));
  const anyActs = entries.some(([, a]) => a);
  const kind = el('select', { id: 'drill-kind' },
    el('option', { value: 'recorded' }, t('drill_recorded')), el('option', { value: 'synthetic' }, t('drill_synthetic')));
  const event = el('select', { id: 'drill-event' }, ...(data.recorded || []).map((r) =>
    el('option', { value: r.id }, (lang === 'ja' ? r.title_ja : r.title_en) + ' (' + r.reports + ' ' + t('reports') + ')')));
  const cls = el('select', { id: 'drill-class' }, ...DRILL_CLASSES.map((c) => el('option', { value: c }, c)));
  cls.value = '5-';
  const secs = el('input', { id: 'drill-seconds', inputmode: 'numeric', value: '20' });
  const warn = el('input', { id: 'drill-warning', type: 'checkbox' });
  const recordedPart = el('div', { id: 'drill-recorded-part' }, el('label', {}, el('span', {}, t('drill_event')), event));
  const syntheticPart = el('div', { id: 'drill-synthetic-part', hidden: '' },
    el('label', {}, el('span', {}, t('drill_class')), cls),
    el('label', {}, el('span', {}, t('drill_seconds')), secs),
    el('label', { class: 'inline' }, warn, t('drill_warning')));
  kind.addEventListener('change', () => {
    recordedPart.hidden = kind.value !== 'recorded';
    syntheticPart.hidden = kind.value === 'recorded';
  });
  const confirm = el('input', { id: 'drill-confirm', type: 'checkbox' });
  const start = el('button', { type: 'button', id: 'drill-start', disabled: '' }, t('drill_start'));
  confirm.addEventListener('change', () => { start.disabled = !confirm.checked || !data.allowed; });
  const result = el('div', { id: 'drill-result' });
  start.addEventListener('click', async () => {
    result.replaceChildren();
    const body = { confirm: confirm.checked };
    if (kind.value === 'recorded') body.recorded = event.value;
    else Object.assign(body, { class: cls.value, seconds: Number(secs.value), warning: warn.checked });
    const r = await api('/api/drill', 'POST', body);
    if (r.status === 401) { show('login'); message(t('session_expired')); return; }
    if (r.status === 200) {
      result.append(el('p', { class: 'message info', role: 'status' }, t('drill_started')));
      confirm.checked = false; start.disabled = true;
    } else {
      result.append(el('p', { class: 'message', role: 'alert' }, apiError(r)));
    }
  });
  return el('div', { class: 'card drill' },
    el('h3', {}, t('drill_heading')),
    data.allowed ? null : el('p', { class: 'message' }, t('drill_disabled_note')),
    el('label', {}, el('span', {}, ''), kind), recordedPart, syntheticPart,
    el('p', { class: 'hint' }, t('drill_outputs')), outputs,
    anyActs ? null : el('p', { class: 'message' }, t('drill_none')),
    el('label', { class: 'inline confirm' }, confirm, t('drill_confirm')),
    el('div', { class: 'buttons' }, start), result);
}

async function loadTests() {
  const r = await api('/api/drills');
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status !== 200) { $('tests-body').replaceChildren(el('p', { class: 'message' }, apiError(r))); return; }
  TESTS.data = r.data;
  $('tests-body').replaceChildren(drillForm(r.data));
}

const TESTS = { data: null };

// The dashboard's operator buttons: silence the voice, reset the alert.
async function operate(path, question) {
  if (!window.confirm(t(question))) return;
  const r = await api(path, 'POST');
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  message(r.status === 200 ? t('done') : apiError(r), r.status === 200);
}

document.addEventListener('DOMContentLoaded', () => {
  $('alert-silence').addEventListener('click', () => operate('/api/alert/silence', 'confirm_silence'));
  $('alert-reset').addEventListener('click', () => operate('/api/alert/reset', 'confirm_reset'));
});

PAGES.tests = {
  open: loadTests,
  lang: () => { if (TESTS.data && !$('view-tests').hidden) $('tests-body').replaceChildren(drillForm(TESTS.data)); },
};
