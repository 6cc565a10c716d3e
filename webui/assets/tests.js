// eewgate web UI: the Tests page — per-output self-tests (one output exercised and
// verified, the result read from the live status's `verification`, the operator's own
// observation recorded where the appliance cannot see the result), and drills through
// every output, clearly labelled, after an explicit confirmation (contacts may drive
// real equipment). Uses app.js's helpers.
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
  selftest_heading: '出力の自己診断', selftest_intro: '出力を1つずつ動作させて確認します。結果は出力ごとの最終確認として記録されます。',
  selftest_not_allowed: '警報の発表中は自己診断できません。', selftest_test: 'テスト', selftest_testing: 'テスト中…',
  selftest_never: '未確認', selftest_last: '最終確認', selftest_last_ok: '最後の正常確認', selftest_ok: '正常', selftest_failed: '異常',
  selftest_disabled: '設定で無効', selftest_no_readback: 'リードバックなし：動作したかどうかは、あなたの確認が記録になります。',
  selftest_relay_confirm: '接点「{name}」を短時間閉じます。実際の設備が動作することがあります。',
  selftest_result: '結果', selftest_did_it_work: '動作しましたか？', selftest_yes: '動作した', selftest_no: '動作しない', selftest_note: 'メモ（任意）',
  selftest_recorded_ok: '記録しました：動作した', selftest_recorded_bad: '記録しました：動作しない',
  selftest_waiting: '結果がまだ届きません。ダッシュボードで出力の状態を確認してください。', selftest_none: '自己診断できる出力がありません。',
  method_readback: 'リードバック', method_pin: '出力端子', method_playback: '再生', method_puback: 'ブローカー受信確認', method_roundtrip: '往復確認', method_operator: '操作者の確認',
  source_self_test: '自己診断', source_operator: '操作者', source_alarm: '警報動作', source_probe: '定期確認', source_continuous: '常時監視',
  err_output_disabled: 'この出力は設定で無効になっています。', err_busy: 'この出力は使用中またはテスト中です。少し待ってから再度実行してください。',
  err_invalid_output: '出力の指定が正しくありません。',
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
  selftest_heading: 'Self-test', selftest_intro: 'Exercises one output at a time and verifies it; the result is recorded as the output\'s last verification.',
  selftest_not_allowed: 'No self-tests while an alert is in progress.', selftest_test: 'Test', selftest_testing: 'testing…',
  selftest_never: 'never verified', selftest_last: 'Last verified', selftest_last_ok: 'Last worked', selftest_ok: 'ok', selftest_failed: 'failed',
  selftest_disabled: 'disabled in the settings', selftest_no_readback: 'No read-back: your confirmation is the record of whether it worked.',
  selftest_relay_confirm: 'This closes contact {name} briefly. It may operate real equipment.',
  selftest_result: 'Result', selftest_did_it_work: 'Did it work?', selftest_yes: 'Yes, it worked', selftest_no: 'No', selftest_note: 'Note (optional)',
  selftest_recorded_ok: 'Recorded: it worked.', selftest_recorded_bad: 'Recorded: it did not work.',
  selftest_waiting: 'No result yet: check the output on the dashboard.', selftest_none: 'No output can be self-tested.',
  method_readback: 'read-back', method_pin: 'pin level', method_playback: 'playback', method_puback: 'broker acknowledged', method_roundtrip: 'round trip', method_operator: 'operator\'s confirmation',
  source_self_test: 'self-test', source_operator: 'operator', source_alarm: 'alarm', source_probe: 'scheduled probe', source_continuous: 'continuous check',
  err_output_disabled: 'This output is switched off in the settings.', err_busy: 'This output is busy (being tested or in use): try again in a moment.',
  err_invalid_output: 'Not an output name.',
});

// ---------------------------------------------------------------- self-tests

// A self-test runs for a moment after its answer; this long without a result, the row
// says so (and still listens).
const SELFTEST_PATIENCE_MS = 30000;

// `data`: GET /api/selftests. `runs[output]`: the test in progress or last finished on
// this page: { phase: 'testing' | 'done' | 'recorded', started (ms), before (the last
// verification's `at` before the test), needs (ask the operator), timer, late (no result
// in SELFTEST_PATIENCE_MS), result (the verification that ended it), worked (the
// operator's answer) }.
const SELFTEST = { data: null, error: null, runs: {}, alertBusy: null };

const stIsRelay = (output) => output.startsWith('relay:');
const stLabel = (prefix, code) => (code && I18N.en[prefix + code] ? t(prefix + code) : String(code || ''));

// A measurement (the daemon's are fractional) to a tenth of a millisecond at most.
const stMs = (x) => Math.round(x * 10) / 10 + ' ms';

function stAlertRunning() {
  const al = (lastStatus && lastStatus.alert) || {};
  return (al.running || []).length > 0;
}

function stVerification(output) {
  const v = lastStatus && lastStatus.verification;
  return (v && v[output]) || null;
}

// "3 min ago · self-test · read-back · ok · 12 ms · detail" of one verification.
function stDescribe(last) {
  const parts = [ago(last.at), stLabel('source_', last.source), stLabel('method_', last.method),
    last.ok ? t('selftest_ok') : t('selftest_failed')];
  if (typeof last.measurement_ms === 'number') parts.push(stMs(last.measurement_ms));
  if (last.detail) parts.push(String(last.detail));
  return parts.filter((p) => p !== '').join(' · ');
}

// "Result: ok (read-back, 12 ms)": what the test this page started found.
function stDescribeResult(last) {
  const how = [stLabel('method_', last.method)];
  if (typeof last.measurement_ms === 'number') how.push(stMs(last.measurement_ms));
  return t('selftest_result') + ': ' + (last.ok ? t('selftest_ok') : t('selftest_failed')) +
    (how[0] ? ' (' + how.join(', ') + ')' : '');
}

function stLastLine(output) {
  const v = stVerification(output);
  if (!v || !v.last) return [el('span', { class: 'warn' }, t('selftest_never'))];
  const out = [el('span', { class: v.last.ok ? 'ok' : 'bad' }, stDescribe(v.last))];
  if (!v.last.ok && v.last_ok_at) {
    out.push(el('span', { class: 'hint' }, ' — ' + t('selftest_last_ok') + ': ' + ago(v.last_ok_at) +
      (v.last_ok_method ? ' (' + stLabel('method_', v.last_ok_method) + ')' : '')));
  }
  return out;
}

// A refusal in the page's language (`alert_in_progress` means something else for drills).
function stError(r) {
  const code = r.data && r.data.error;
  if (code === 'alert_in_progress') return t('selftest_not_allowed');
  return apiError(r);
}

function stEl(attr, output) {
  return document.querySelector('#selftest-outputs [' + attr + '="' + CSS.escape(output) + '"]');
}

// The test in progress is over once the live status carries a verification made at or
// after the answer's `started_at`.
function stSettle(output) {
  const run = SELFTEST.runs[output];
  if (!run || run.phase !== 'testing') return;
  const last = (stVerification(output) || {}).last;
  if (!last || !last.at) return;
  const at = Date.parse(last.at);
  const done = Number.isFinite(run.started) ? at >= run.started : last.at !== run.before;
  if (done) { run.phase = 'done'; run.result = last; clearTimeout(run.timer); }
}

function stAskWorked(output) {
  const note = el('input', { type: 'text', maxlength: '200', 'data-confirm-note': output, placeholder: t('selftest_note') });
  const answer = (ok) => async () => {
    const body = { output, ok };
    if (note.value.trim()) body.note = note.value.trim();
    yes.disabled = true; no.disabled = true;
    const r = await api('/api/selftest/confirm', 'POST', body);
    if (r.status === 401) { show('login'); message(t('session_expired')); return; }
    yes.disabled = false; no.disabled = false;
    if (r.status !== 200) { message(stError(r)); return; }
    message('');
    const run = SELFTEST.runs[output] || {};
    clearTimeout(run.timer);
    SELFTEST.runs[output] = Object.assign(run, { phase: 'recorded', worked: ok });
    renderSelfTestRow(output);
  };
  const yes = el('button', { type: 'button', class: 'small', 'data-confirm': output, 'data-ok': 'true' }, t('selftest_yes'));
  const no = el('button', { type: 'button', class: 'small secondary', 'data-confirm': output, 'data-ok': 'false' }, t('selftest_no'));
  yes.addEventListener('click', answer(true));
  no.addEventListener('click', answer(false));
  return el('div', { class: 'selftest-ask', 'data-selftest-ask': output },
    el('strong', {}, t('selftest_did_it_work')), yes, no, note);
}

// What the row says about the test this page started (empty when none).
function stRunState(output) {
  const run = SELFTEST.runs[output];
  if (!run) return [];
  if (run.phase === 'recorded') {
    return [el('span', { class: run.worked ? 'ok' : 'bad' }, t(run.worked ? 'selftest_recorded_ok' : 'selftest_recorded_bad'))];
  }
  if (run.phase === 'testing') {
    const out = [el('span', { class: 'warn' }, t('selftest_testing'))];
    if (run.late) {
      out.push(el('span', { class: 'hint' }, ' ' + t('selftest_waiting')));
      // It may well have run: the operator can still say what they saw.
      if (run.needs) out.push(stAskWorked(output));
    }
    return out;
  }
  const last = run.result || {};
  const out = [el('span', { class: last.ok ? 'ok' : 'bad' }, stDescribeResult(last))];
  if (run.needs) out.push(stAskWorked(output));
  return out;
}

function stEntry(output) {
  return ((SELFTEST.data && SELFTEST.data.outputs) || []).find((o) => o.output === output) || null;
}

function renderSelfTestRow(output) {
  const entry = stEntry(output);
  if (!entry || !$('selftest-outputs')) return;
  stSettle(output);
  const last = stEl('data-selftest-last', output);
  if (last) last.replaceChildren(...stLastLine(output));
  const state = stEl('data-selftest-state', output);
  const run = SELFTEST.runs[output] || {};
  const phase = run.phase || '';
  const key = phase + (run.late ? '+late' : '');
  // Rebuilt only when the phase changes, so a half-typed note stays.
  if (state && state.dataset.phase !== key) {
    state.dataset.phase = key;
    state.replaceChildren(...stRunState(output));
  }
  const button = stEl('data-selftest', output);
  const tick = stEl('data-selftest-confirm', output);
  if (button) {
    button.disabled = !SELFTEST.data.allowed || stAlertRunning() || !entry.enabled ||
      phase === 'testing' || (stIsRelay(output) && !(tick && tick.checked));
  }
  if (tick) tick.disabled = !SELFTEST.data.allowed || !entry.enabled;
}

async function startSelfTest(output) {
  const entry = stEntry(output);
  const tick = stEl('data-selftest-confirm', output);
  const body = { output };
  if (stIsRelay(output)) body.confirm = Boolean(tick && tick.checked);
  const before = ((stVerification(output) || {}).last || {}).at || null;
  const button = stEl('data-selftest', output);
  if (button) button.disabled = true;
  message('');
  const r = await api('/api/selftest', 'POST', body);
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status !== 200) {
    message(stError(r));
    renderSelfTestRow(output);
    return;
  }
  if (tick) tick.checked = false;
  const prev = SELFTEST.runs[output];
  if (prev) clearTimeout(prev.timer);
  const run = {
    phase: 'testing', started: Date.parse((r.data && r.data.started_at) || ''), before,
    needs: Boolean((r.data && r.data.needs_confirmation) || (entry && entry.needs_confirmation)),
  };
  run.timer = setTimeout(() => { run.late = true; renderSelfTestRow(output); }, SELFTEST_PATIENCE_MS);
  SELFTEST.runs[output] = run;
  renderSelfTestRow(output);
}

function selfTestRow(entry) {
  const output = entry.output;
  const title = entry.name ? output + ' ' + entry.name : output;
  const button = el('button', { type: 'button', 'data-selftest': output, disabled: '' }, t('selftest_test'));
  button.addEventListener('click', () => startSelfTest(output));
  let confirm = null;
  if (stIsRelay(output)) {
    const tick = el('input', { type: 'checkbox', 'data-selftest-confirm': output });
    tick.addEventListener('change', () => renderSelfTestRow(output));
    confirm = el('label', { class: 'inline confirm' }, tick,
      t('selftest_relay_confirm').replace('{name}', entry.name || output));
  }
  const notes = [];
  if (!entry.enabled) notes.push(el('span', { class: 'tag' }, t('selftest_disabled')));
  if (entry.needs_confirmation) notes.push(el('span', { class: 'hint' }, t('selftest_no_readback')));
  return el('li', { class: 'selftest-row', 'data-output': output },
    el('div', { class: 'selftest-head' }, el('strong', {}, title), ...notes),
    el('div', {}, el('span', { class: 'hint' }, t('selftest_last') + ': '), el('span', { 'data-selftest-last': output })),
    confirm,
    el('div', { class: 'selftest-actions' }, button, el('span', { class: 'selftest-state', 'data-selftest-state': output })));
}

function selfTestCard() {
  const card = el('div', { id: 'selftest', class: 'card selftest' }, el('h3', {}, t('selftest_heading')));
  if (!SELFTEST.data) {
    card.append(el('p', { class: 'message' }, SELFTEST.error || t('unknown')));
    return card;
  }
  card.append(el('p', { class: 'hint' }, t('selftest_intro')));
  if (!SELFTEST.data.allowed || stAlertRunning()) card.append(el('p', { class: 'message', id: 'selftest-not-allowed' }, t('selftest_not_allowed')));
  const outputs = SELFTEST.data.outputs || [];
  const list = el('ul', { id: 'selftest-outputs', class: 'selftests' }, ...outputs.map(selfTestRow));
  card.append(outputs.length ? list : el('p', { class: 'hint' }, t('selftest_none')));
  return card;
}

function renderSelfTests() {
  const old = $('selftest');
  if (!old) return;
  old.replaceWith(selfTestCard());
  for (const o of (SELFTEST.data && SELFTEST.data.outputs) || []) renderSelfTestRow(o.output);
}

async function loadSelfTests() {
  const r = await api('/api/selftests');
  if (r.status === 401) return r;
  SELFTEST.data = r.status === 200 ? r.data : null;
  SELFTEST.error = r.status === 200 ? null : apiError(r);
  SELFTEST.alertBusy = stAlertRunning();
  return r;
}

// Every status update: settle the tests in progress, refresh the rows; when an alert
// starts or ends, ask again whether self-tests are allowed.
function selfTestStatus() {
  const busy = stAlertRunning();
  const visible = !$('view-tests').hidden;
  if (SELFTEST.alertBusy !== null && busy !== SELFTEST.alertBusy && visible) {
    SELFTEST.alertBusy = busy;
    loadSelfTests().then((r) => { if (r.status !== 401) renderSelfTests(); });
    return;
  }
  SELFTEST.alertBusy = busy;
  for (const o of (SELFTEST.data && SELFTEST.data.outputs) || []) renderSelfTestRow(o.output);
}

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
      const eventId = r.data && r.data.event_id;
      if (eventId) {
        // Its record: it fills in as the drill runs, and is complete once it has ended.
        const link = el('button', { type: 'button', class: 'link h-event', id: 'drill-report-link', 'data-drill-report': eventId },
          t('dr_open_started') + ' (' + eventId + ')');
        link.addEventListener('click', () => openDrillReport(eventId));
        result.append(el('p', {}, link));
      }
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

function renderTests() {
  const drill = TESTS.data ? drillForm(TESTS.data) : el('p', { class: 'message' }, TESTS.error);
  $('tests-body').replaceChildren(el('div', { id: 'selftest' }), drill);
  // Past drills below the two cards (outside their grid, which would gain a column).
  $('tests-reports').replaceChildren(el('div', { id: 'drill-reports' }));
  renderDrillReports();
  renderSelfTests();
}

async function loadTests() {
  const [r, st, dr] = await Promise.all([api('/api/drills'), loadSelfTests(), loadDrillReports()]);
  if (r.status === 401 || st.status === 401 || dr.status === 401) { show('login'); message(t('session_expired')); return; }
  TESTS.data = r.status === 200 ? r.data : null;
  TESTS.error = r.status === 200 ? null : apiError(r);
  renderTests();
}

const TESTS = { data: null, error: null };

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
  lang: () => { if ((TESTS.data || TESTS.error) && !$('view-tests').hidden) renderTests(); },
  status: selfTestStatus,
};
