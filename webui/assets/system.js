// eewgate web UI: the System page — version, uptime, time and its sync source, the
// log download, and the settings file's export and import. Uses app.js's helpers.
'use strict';

Object.assign(I18N.ja, {
  nav_system: 'システム', system_title: 'システム', sys_version: 'バージョン', sys_started: '起動時刻',
  sys_uptime: '稼働時間', sys_host: 'ホスト名', sys_settings: '設定ファイル', sys_revision: '適用中の設定',
  sys_time: '時刻同期', sys_source: '同期元', sys_features: '機能', sys_logs: 'ログをダウンロード',
  sys_export: '設定ファイルをエクスポート', sys_import: '設定ファイルをインポート',
  sys_import_hint: 'ファイル全体を検証してから保存します（保存は監査記録に残ります）。',
  sys_import_bad: 'インポートできません。次の点を直してください:', sys_imported: 'インポートしました。',
  days: '日', hours: '時間', minutes: '分',
  sys_cert: 'HTTPS 証明書', sys_cert_file: '証明書（PEM）', sys_key_file: '秘密鍵（PEM）', sys_cert_upload: 'アップロード',
  sys_cert_hint: '証明書と鍵が対になっているか確認してから保存します。鍵は画面にも記録にも表示されません。',
  sys_cert_both: '証明書と秘密鍵の両方を選んでください。', sys_cert_stored: '保存しました。',
  sys_cert_use: 'この証明書で HTTPS にする', sys_cert_switching: 'Web UI が HTTPS で再起動します。次の URL で再度ログインしてください:',
});
Object.assign(I18N.en, {
  nav_system: 'System', system_title: 'System', sys_version: 'Version', sys_started: 'Started',
  sys_uptime: 'Uptime', sys_host: 'Host name', sys_settings: 'Settings file', sys_revision: 'Settings in effect',
  sys_time: 'Time sync', sys_source: 'Source', sys_features: 'Features', sys_logs: 'Download the log',
  sys_export: 'Export the settings file', sys_import: 'Import a settings file',
  sys_import_hint: 'The whole file is checked before it is saved (and the save is audited).',
  sys_import_bad: 'Not imported: please correct these:', sys_imported: 'Imported.',
  days: 'd', hours: 'h', minutes: 'min',
  sys_cert: 'HTTPS certificate', sys_cert_file: 'Certificate (PEM)', sys_key_file: 'Private key (PEM)', sys_cert_upload: 'Upload',
  sys_cert_hint: 'The key must be the certificate\'s own; it is checked before it is stored, and never shown or logged.',
  sys_cert_both: 'Choose both the certificate and its private key.', sys_cert_stored: 'Stored.',
  sys_cert_use: 'Use it: switch to HTTPS', sys_cert_switching: 'The web UI restarts over HTTPS. Log in again at:',
});

function duration(s) {
  if (s === null || s === undefined) return '—';
  const d = Math.floor(s / 86400); const h = Math.floor((s % 86400) / 3600); const m = Math.floor((s % 3600) / 60);
  return (d ? d + ' ' + t('days') + ' ' : '') + h + ' ' + t('hours') + ' ' + m + ' ' + t('minutes');
}

async function importSettings(file, out) {
  out.replaceChildren();
  const text = await file.text();
  const cur = await api('/api/settings');
  if (cur.status !== 200) { out.append(el('p', { class: 'message' }, apiError(cur))); return; }
  const r = await api('/api/settings', 'PUT', { revision: cur.data.revision, text });
  if (r.status === 200) {
    out.append(el('p', { class: 'message info', role: 'status' }, t('sys_imported') + ' ' +
      (r.data.apply === 'now' ? t('saved_now') : t('saved_later'))));
    return;
  }
  const problems = (r.data && r.data.check && r.data.check.problems) || [];
  out.append(el('div', { class: 'message', role: 'alert' }, problems.length ? t('sys_import_bad') : apiError(r),
    el('ul', {}, ...problems.map((p) => el('li', {}, (p.path ? p.path + ': ' : '') + p.message)))));
}

async function loadSystem() {
  const r = await api('/api/system');
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status !== 200) { $('system-body').replaceChildren(el('p', { class: 'message' }, apiError(r))); return; }
  const s = r.data;
  const tm = s.time || {};
  const sync = tm.fault ? [t('fault'), 'bad'] : tm.synchronised ? [t('synchronised'), 'ok'] : [t('not_synchronised'), 'bad'];
  const info = el('ul', { id: 'system-info', class: 'rows' },
    row(t('sys_version'), s.version || '—'),
    row(t('sys_started'), s.started_at ? new Date(s.started_at).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB') : '—'),
    row(t('sys_uptime'), duration(s.uptime_s)),
    row(t('sys_host'), s.host || '—'),
    row(t('sys_settings'), s.settings_path || '—'),
    row(t('sys_revision'), (s.settings && s.settings.revision) || '—'),
    row(t('sys_time'), sync[0] + (tm.detail ? ' — ' + tm.detail : ''), sync[1]),
    row(t('sys_source'), tm.source || '—'),
    row(t('sys_features'), (s.features || []).join(', ') || t('none')));
  const certFile = el('input', { type: 'file', id: 'system-cert-file', accept: '.pem,.crt' });
  const keyFile = el('input', { type: 'file', id: 'system-key-file', accept: '.pem,.key' });
  const certOut = el('div', { id: 'system-cert-result' });
  const certButton = el('button', { type: 'button', id: 'system-cert-upload', class: 'h-btn' }, t('sys_cert_upload'));
  certButton.addEventListener('click', () => uploadCertificate(certFile, keyFile, certOut));
  const file = el('input', { type: 'file', id: 'system-import-file', accept: '.toml,text/plain' });
  const out = el('div', { id: 'system-import-result' });
  file.addEventListener('change', () => { if (file.files && file.files[0]) importSettings(file.files[0], out); });
  $('system-body').replaceChildren(
    el('div', { class: 'card' }, info),
    el('div', { class: 'card system-actions' },
      el('a', { id: 'system-logs', class: 'h-btn', href: '/api/system/logs', download: '' }, t('sys_logs')), ' ',
      el('a', { id: 'system-export', class: 'h-btn', href: '/api/system/config', download: '' }, t('sys_export')),
      el('label', {}, el('span', {}, t('sys_import')), file),
      el('p', { class: 'hint' }, t('sys_import_hint')), out),
    el('div', { class: 'card system-actions' }, el('h3', {}, t('sys_cert')),
      el('label', {}, el('span', {}, t('sys_cert_file')), certFile),
      el('label', {}, el('span', {}, t('sys_key_file')), keyFile),
      certButton, el('p', { class: 'hint' }, t('sys_cert_hint')), certOut));
}

// An operator's HTTPS certificate: uploaded (checked: the key must be the certificate's
// own), then switched on with a settings save — the UI comes back over HTTPS.
async function uploadCertificate(certFile, keyFile, out) {
  out.replaceChildren();
  const c = certFile.files && certFile.files[0];
  const k = keyFile.files && keyFile.files[0];
  if (!c || !k) { out.append(el('p', { class: 'message' }, t('sys_cert_both'))); return; }
  const r = await api('/api/uploads/certificate', 'POST', { certificate: await c.text(), key: await k.text() });
  keyFile.value = '';
  if (r.status !== 200) { out.append(el('p', { class: 'message', role: 'alert' }, apiError(r))); return; }
  const use = el('button', { type: 'button', id: 'system-cert-use', class: 'h-btn' }, t('sys_cert_use'));
  out.append(el('p', { class: 'message info', role: 'status' }, t('sys_cert_stored') + ' SHA-256 ' + r.data.fingerprint), use);
  use.addEventListener('click', async () => {
    const cur = await api('/api/settings');
    if (cur.status !== 200) { out.append(el('p', { class: 'message' }, apiError(cur))); return; }
    const s = await api('/api/settings', 'PUT', { revision: cur.data.revision, changes: [
      { path: 'webui.https', value: true },
      { path: 'webui.cert_file', value: r.data.cert_file },
      { path: 'webui.key_file', value: r.data.key_file },
    ] });
    const next = 'https://' + location.host + '/';
    out.append(s.status === 200
      ? el('p', { class: 'message info' }, t('sys_cert_switching') + ' ', el('a', { href: next }, next))
      : el('p', { class: 'message' }, apiError(s)));
  });
}

PAGES.system = { open: loadSystem, lang: () => { if (!$('view-system').hidden) loadSystem(); } };
