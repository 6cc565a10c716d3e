// eewgate web UI: the settings page. Every setting of the engine and the outputs as a
// form built from the settings file; a save sends only the keys that changed (by the
// same dotted paths the validators report), so every problem appears beside its field.
// The whole file can also be edited as text. Uses app.js's helpers (api, el, $, t).
'use strict';

Object.assign(I18N.ja, {
  s_site: '設置場所', s_prediction: '予測', s_alert: '受信と判定', s_relays: '接点出力', s_relay: '接点',
  s_audio_rule: '音声の条件', s_audio_dev: '音声出力', s_led: '表示灯の条件', s_mqtt_rule: 'MQTTの条件',
  s_mqtt: 'MQTT ブローカー', s_links: '上位回線', s_text: '設定ファイルを直接編集',
  default: '既定', default_is: '既定: ', yes: 'はい', no: 'いいえ',
  check: '確認', save: '保存', reload: '読み直す', save_text: 'ファイルを保存',
  f_lat: '緯度', f_lon: '経度', f_arv400: '地盤増幅率 ARV400 (J-SHIS)', f_avs30: 'AVS30 (m/s)',
  f_area_code: '予報区コード', f_mode: '予測方式', f_mw_offset: 'Mw 補正', f_rock_factor: '基盤補正係数',
  licence_note: '「site」(地点予測)の値を他者に提供するには、気象業務法第17条による予報業務の許可が必要です。',
  f_training: '訓練報で動作', f_test: '試験報で動作', f_drill: 'ドリルを許可', f_deep: '深発地震 (150 km 超)',
  f_plum: 'PLUM 法', f_single_station: '1点観測', f_level_method: 'レベル法', f_assumed_hypocenter: '仮定震源',
  f_past_arrival_s: '到達後も動作する秒数 (false=しない)', f_event_expiry_s: 'イベント失効 (秒)',
  f_enabled: '有効', f_name: '名前', f_min_class: '最小震度', f_min_lp: '最小長周期地震動階級',
  f_warning_only: '警報のときだけ', f_inc_training: '訓練を含める', f_inc_test: '試験を含める', f_inc_drill: 'ドリルを含める',
  f_rmode: '動作', f_pulse_ms: 'パルス幅 (ms)', f_hold_s: '最短保持 (秒)', f_prestart_ms: 'PA 先行起動 (ms)',
  f_release_on: '復帰条件', rel_cancel: '取消', rel_expiry: '失効', rel_reset: 'リセット',
  f_style: '読み上げ方式', f_countdown: 'カウントダウン開始 (秒)', f_quiet_start: '静音時間 開始',
  f_quiet_end: '静音時間 終了', f_quiet_min: '静音時間中の最小震度',
  f_backend: '出力先', f_device: 'ALSA デバイス', f_volume: '音量 (0–100)', f_chime: 'チャイム',
  f_languages: '言語 (カンマ区切り)', f_repeat: '繰り返し回数',
  f_host: 'ホスト', f_port: 'ポート', f_device_id: '機器 ID', f_topic_prefix: 'トピック接頭辞', f_username: 'ユーザー名',
  f_keep_alive: 'キープアライブ (秒)', f_stale: '古い警報を捨てる (ms)', f_ha: 'Home Assistant 検出', f_cap: 'CAP 1.2',
  f_bms_ack: 'BMS の応答で確認', f_probe_timeout: 'プローブの待ち時間 (秒)',
  s_assurance: '定期動作確認', f_assurance_enabled: '有効', f_mqtt_probe_every: 'MQTT プローブ間隔 (秒)',
  f_relay_probe_every: '接点プローブ間隔 (時間)', f_relay_probe_window: '接点プローブの時間帯 (例 03:00-04:00)',
  f_operator_max_age: '操作者確認の有効期間 (日)', f_delivery_test_every: '配信テストの想定間隔 (秒, 0=確認しない)',
  f_webhook_url: '通知先 Webhook URL', f_audio_probe_every: '音声プローブ間隔 (時間, 0=しない)',
  f_start_delay: '起動後プローブを待つ時間 (秒)', f_probe_level: 'プローブ音の音量 (dBFS)',
  f_capture_device: '折り返し録音デバイス (ALSA)',
  proofs_title: '変更した出力の動作確認', proof_waiting: '確認中…', proof_ok: '動作を確認しました', proof_bad: '確認できませんでした',
  proof_by_person: '自動では確認できません。テスト・訓練ページで動作を確認してください。',
  f_tls: 'TLS', f_ca_file: 'CA ファイル', f_framing: '伝送手順', f_silence: '無通信で異常 (秒)',
  f_serial_device: 'シリアルデバイス', f_baud: '通信速度', f_interval: '間隔 (ms)', f_repeat_replay: '繰り返す',
  f_api_base: 'API', f_dm_test: '訓練・試験報', f_redundant: '冗長接続',
  problems: '保存できません。各項目の指摘を直してください。', conflict: '他の人が先に設定を変更しました。読み直してから変更し直してください。',
  no_changes: '変更はありません。', checked_ok: '問題ありません。次の変更が保存されます:',
  saved_now: '保存し、適用しました。', saved_later: '保存しました。現在の警報が終わり全接点が復帰してから適用します。',
  pending: '保存済みの変更が未適用です: ', applied_rev: '適用中の設定: ', not_editable: 'この機器の設定はここでは編集できません。',
  pending_waiting_for_alert_end: '現在の警報が終わり、全接点が復帰するのを待っています。',
  wizard_title: '初期設定 2/2: 設置場所・回線・MQTT', wizard_intro: '設置場所（緯度・経度・地盤増幅率・予報区）、予測方式、上位回線、MQTT ブローカーを設定してください。ほかの項目は後から「設定」で変更できます。',
  wizard_save: '保存して開始', wizard_skip: 'あとで設定する', wizard_done: '設定を保存しました。',
  suggested_area: '{code} {name}（代表点まで {km} km）。予報区は面で決まるため、気象庁の区域図で確認してください。',
  suggest_area: '最寄りの予報区を提案', suggest_none: '提案できません。緯度・経度を確認してください。',
  other_problems: 'その他の指摘', changes: '変更内容', path: '項目', old: '変更前', new: '変更後',
  text_hint: 'コメントはそのまま保存されます。保存前に全体を検証します。', notes: '注意',
  chime_upload: 'WAV をアップロード', chime_upload_hint: '16ビット PCM の WAV、10秒以内。', chime_uploaded: 'アップロードしました（{s} 秒）。保存すると使われます。',
  replay_read_only: '再生（replay）回線は本機の設定ファイルでのみ設定できます。訓練は「テスト・訓練」から行えます。',
  add_relay: '接点を追加', add_link: '回線を追加', remove: '削除', undo_remove: '削除を取り消す', f_id: '接点番号',
  f_api_key_file: 'API キーのファイル (600)',
  w_title: '想定地震での動作', w_intro: '参照用の地震を設置場所のまわりに置き、この設定で警報判定を動かした結果です（何も動作させません）。',
  w_draft: '編集中（未保存）の設定で計算しています。', w_saved: '現在の設定で計算しています。', w_loading: '計算中…',
  w_invalid: '設定に問題があるため計算できません。', w_failed: '計算できませんでした: ',
  w_note: '長周期地震動階級は想定に含まれません。時刻は受信からの秒数です。',
  w_class: '予測震度', w_none: 'なし', w_s_in: '主要動まで {s} 秒', w_s_ago: '主要動は {s} 秒前に到達', w_arrived: '主要動到達済み', w_imminent: 'まもなく（PLUM 法、カウントダウンなし）',
  w_unknown_arrival: '到達時刻不明', w_acts: '警報として動作します', w_not_acted: '動作しません: ',
  w_epicentre: '{name}、設置場所の{dir} {km} km、深さ {depth} km、M{m}', w_assumed: '{name}（設置場所に仮定した震源）',
  w_fires: '動作', w_no_fire: '動作しない', w_disabled: '無効', w_on: '{t} 秒で閉', w_pulse: '（パルス {ms} ms）', w_off: '{t} 秒で開（{c}）',
  w_held: 'リセットまで閉じたまま', w_says: '{t} 秒: 「{text}」', w_countdown: 'カウントダウン {a}…{b}', w_led: '{t} 秒: {p}', w_publish: '{t} 秒: 配信（{state}）',
  w_stop: '{t} 秒で停止（{c}）', w_no_broker: 'MQTT ブローカー未設定のため送信はされません', w_prestart: 'PA 先行起動 {ms} ms',
  w_state_started: '開始', w_state_updated: '更新', w_state_cancelled: '取消', w_state_ended: '終了', w_state_reset: 'リセット',
  c_start: '開始', c_update: '更新', c_prestart: 'PA 先行起動後', c_countdown: 'カウントダウン', c_cancel: '取消', c_expiry: '失効', c_pulse_end: 'パルス終了',
  c_hold_end: '保持時間終了', c_reset: 'リセット', c_silence: '消音', c_fault: '異常', c_self_test: '自己試験',
  r_training_disabled: '訓練報は受信しない設定です', r_test_disabled: '試験報は受信しない設定です', r_deep_event_ignored: '深発地震は無視する設定です',
  r_plum_ignored: 'PLUM 法は無視する設定です', r_single_station_ignored: '1点観測は無視する設定です', r_assumed_hypocenter_ignored: '仮定震源は無視する設定です',
  r_level_method_ignored: 'レベル法は無視する設定です', r_below_every_output_rule: 'どの出力の条件にも達しません', r_s_wave_passed: '主要動は到達済みです', r_stale_report: '古い電文です',
  relay_n: '接点{n}',
});
Object.assign(I18N.en, {
  s_site: 'Site', s_prediction: 'Prediction', s_alert: 'Reception and decisions', s_relays: 'Relay contacts', s_relay: 'Contact',
  s_audio_rule: 'Audio: when', s_audio_dev: 'Audio output', s_led: 'Status LED: when', s_mqtt_rule: 'MQTT: when',
  s_mqtt: 'MQTT broker', s_links: 'Upstream links', s_text: 'Edit the settings file directly',
  default: 'default', default_is: 'default: ', yes: 'yes', no: 'no',
  check: 'Check', save: 'Save', reload: 'Reload', save_text: 'Save file',
  f_lat: 'Latitude', f_lon: 'Longitude', f_arv400: 'Site amplification ARV400 (J-SHIS)', f_avs30: 'AVS30 (m/s)',
  f_area_code: 'Forecast area code', f_mode: 'Prediction mode', f_mw_offset: 'Mw offset', f_rock_factor: 'Bedrock factor',
  licence_note: 'Providing "site" (point) predictions to others requires a JMA forecasting licence (Meteorological Service Act, Article 17).',
  f_training: 'Act on training reports', f_test: 'Act on test reports', f_drill: 'Allow drills', f_deep: 'Deep events (> 150 km)',
  f_plum: 'PLUM method', f_single_station: 'Single station', f_level_method: 'Level method', f_assumed_hypocenter: 'Assumed hypocentre',
  f_past_arrival_s: 'Still act this many s after arrival (false = never)', f_event_expiry_s: 'Event expiry (s)',
  f_enabled: 'Enabled', f_name: 'Name', f_min_class: 'Minimum intensity', f_min_lp: 'Minimum long-period class',
  f_warning_only: 'Warnings only', f_inc_training: 'Include training', f_inc_test: 'Include test', f_inc_drill: 'Include drills',
  f_rmode: 'Mode', f_pulse_ms: 'Pulse (ms)', f_hold_s: 'Minimum hold (s)', f_prestart_ms: 'PA pre-start (ms)',
  f_release_on: 'Released by', rel_cancel: 'cancel', rel_expiry: 'expiry', rel_reset: 'reset',
  f_style: 'Speech style', f_countdown: 'Countdown from (s)', f_quiet_start: 'Quiet hours start',
  f_quiet_end: 'Quiet hours end', f_quiet_min: 'Minimum intensity in quiet hours',
  f_backend: 'Backend', f_device: 'ALSA device', f_volume: 'Volume (0–100)', f_chime: 'Chime',
  f_languages: 'Languages (comma-separated)', f_repeat: 'Repeat',
  f_host: 'Host', f_port: 'Port', f_device_id: 'Device id', f_topic_prefix: 'Topic prefix', f_username: 'User name',
  f_keep_alive: 'Keep-alive (s)', f_stale: 'Drop stale alerts after (ms)', f_ha: 'Home Assistant discovery', f_cap: 'CAP 1.2',
  f_bms_ack: 'Proved by the BMS\'s acknowledgement', f_probe_timeout: 'Probe timeout (s)',
  s_assurance: 'Delivery assurance', f_assurance_enabled: 'Enabled', f_mqtt_probe_every: 'MQTT probe every (s)',
  f_relay_probe_every: 'Contact probe every (h)', f_relay_probe_window: 'Contact probe window (e.g. 03:00-04:00)',
  f_operator_max_age: 'Operator confirmation valid for (days)', f_delivery_test_every: 'Delivery test expected every (s, 0 = not checked)',
  f_webhook_url: 'Notification webhook URL', f_audio_probe_every: 'Audio probe every (h, 0 = never)',
  f_start_delay: 'Wait after start before probing (s)', f_probe_level: 'Probe tone level (dBFS)',
  f_capture_device: 'Loopback capture device (ALSA)',
  proofs_title: 'Proof of the outputs the change touched', proof_waiting: 'checking…', proof_ok: 'seen working', proof_bad: 'not proved',
  proof_by_person: 'cannot be proved automatically: test it on the Tests page.',
  f_tls: 'TLS', f_ca_file: 'CA file', f_framing: 'Framing', f_silence: 'Fault after silence (s)',
  f_serial_device: 'Serial device', f_baud: 'Baud', f_interval: 'Interval (ms)', f_repeat_replay: 'Repeat',
  f_api_base: 'API', f_dm_test: 'Training and test', f_redundant: 'Redundant sockets',
  problems: 'Not saved: please correct the fields marked below.', conflict: 'Someone else changed the settings meanwhile. Reload, then make your change again.',
  no_changes: 'Nothing changed.', checked_ok: 'No problems. Saving would change:',
  saved_now: 'Saved and applied.', saved_later: 'Saved. It takes effect once the current alert has ended and every contact is released.',
  pending: 'A saved change is not in effect yet: ', applied_rev: 'Settings in effect: ', not_editable: 'The settings of this appliance cannot be edited here.',
  pending_waiting_for_alert_end: 'waiting for the alert in progress to end and every contact to be released.',
  wizard_title: 'First-boot setup 2/2: site, links, MQTT', wizard_intro: 'Set the site (latitude, longitude, amplification, forecast area), the prediction mode, the upstream links and the MQTT broker. Everything else can be changed later under Settings.',
  wizard_save: 'Save and start', wizard_skip: 'Later', wizard_done: 'Settings saved.',
  suggested_area: '{code} {name} (its centroid {km} km away). Areas are polygons: check it on JMA\'s map.',
  suggest_area: 'Suggest the nearest area', suggest_none: 'No suggestion: check the latitude and longitude.',
  other_problems: 'Other problems', changes: 'Changes', path: 'Setting', old: 'Before', new: 'After',
  text_hint: 'Comments are kept. The whole file is checked before it is saved.', notes: 'Notes',
  chime_upload: 'Upload a WAV', chime_upload_hint: '16-bit PCM WAV, at most 10 s.', chime_uploaded: 'Uploaded ({s} s). Save to use it.',
  replay_read_only: 'Replay links are set in the settings file on the appliance only; drills are on the Tests page.',
  add_relay: 'Add a contact', add_link: 'Add a link', remove: 'Remove', undo_remove: 'Keep it', f_id: 'Contact number',
  f_api_key_file: 'API key file (mode 600)',
  w_title: 'What would happen', w_intro: 'Reference earthquakes placed around the site, run through the alert engine with these settings (nothing operates).',
  w_draft: 'With the settings being edited (not saved).', w_saved: 'With the settings in force.', w_loading: 'Working…',
  w_invalid: 'The settings have problems: no preview.', w_failed: 'No preview: ',
  w_note: 'Long-period classes are not part of the reference earthquakes. Times are seconds after receipt.',
  w_class: 'Predicted intensity', w_none: 'none', w_s_in: 'S wave in {s} s', w_s_ago: 'S wave arrived {s} s ago', w_arrived: 'S wave arrived', w_imminent: 'imminent (PLUM, no countdown)',
  w_unknown_arrival: 'arrival unknown', w_acts: 'Acted on as an alert', w_not_acted: 'Not acted on: ',
  w_epicentre: '{name}, {km} km {dir} of the site, depth {depth} km, M{m}', w_assumed: '{name} (hypocentre assumed at the site)',
  w_fires: 'operates', w_no_fire: 'does not operate', w_disabled: 'disabled', w_on: 'closes at {t} s', w_pulse: ' (pulse {ms} ms)', w_off: 'opens at {t} s ({c})',
  w_held: 'stays closed until reset', w_says: '{t} s: "{text}"', w_countdown: 'countdown {a}…{b}', w_led: '{t} s: {p}', w_publish: '{t} s: published ({state})',
  w_stop: 'stops at {t} s ({c})', w_no_broker: 'no MQTT broker configured: nothing is sent', w_prestart: 'PA pre-start {ms} ms',
  w_state_started: 'started', w_state_updated: 'updated', w_state_cancelled: 'cancelled', w_state_ended: 'ended', w_state_reset: 'reset',
  c_start: 'start', c_update: 'update', c_prestart: 'after the PA pre-start', c_countdown: 'countdown', c_cancel: 'cancel', c_expiry: 'expiry', c_pulse_end: 'pulse end',
  c_hold_end: 'hold time over', c_reset: 'reset', c_silence: 'silence', c_fault: 'fault', c_self_test: 'self-test',
  r_training_disabled: 'training reports are not acted on', r_test_disabled: 'test reports are not acted on', r_deep_event_ignored: 'deep events are ignored',
  r_plum_ignored: 'PLUM reports are ignored', r_single_station_ignored: 'single-station reports are ignored', r_assumed_hypocenter_ignored: 'assumed hypocentres are ignored',
  r_level_method_ignored: 'level-method reports are ignored', r_below_every_output_rule: 'below every output\'s condition', r_s_wave_passed: 'the S wave has passed', r_stale_report: 'a stale report',
  relay_n: 'Contact {n}',
});

const CLASS_OPTIONS = ['any', '0', '1', '2', '3', '4', '5-', '5+', '6-', '6+', '7'];
const ACT_OPTIONS = ['act', 'ignore'];

// One field: `path` (dotted, as the validators report it), `kind` (num, int, text, bool,
// select, list, release, time, int_or_false), a label key, options, the documented
// default. An empty input (or "default") leaves the key out of the file: its default applies.
const f = (path, kind, label, extra) => Object.assign({ path, kind, label }, extra || {});

function ruleFields(p, defs) {
  return [
    f(p + '.enabled', 'bool', 'f_enabled', { def: 'true' }),
    f(p + '.min_class', 'select', 'f_min_class', { options: CLASS_OPTIONS, def: defs.min_class }),
    f(p + '.min_long_period_class', 'int', 'f_min_lp', { min: 0, max: 4 }),
    f(p + '.warning_only', 'bool', 'f_warning_only', { def: 'false' }),
    f(p + '.include.training', 'bool', 'f_inc_training'),
    f(p + '.include.test', 'bool', 'f_inc_test'),
    f(p + '.include.drill', 'bool', 'f_inc_drill'),
  ];
}

const LINK_FIELDS = {
  jma_tcp: (p) => [f(p + '.host', 'text', 'f_host'), f(p + '.port', 'int', 'f_port', { min: 1, max: 65535 }),
    f(p + '.framing', 'select', 'f_framing', { options: ['plain', 'jma_socket'], def: 'plain' })],
  jma_serial: (p) => [f(p + '.device', 'text', 'f_serial_device'), f(p + '.baud', 'int', 'f_baud', { def: '9600' }),
    f(p + '.framing', 'select', 'f_framing', { options: ['plain', 'jma_socket'], def: 'plain' })],
  replay: (p) => [f(p + '.interval_ms', 'int', 'f_interval', { def: '1000' }), f(p + '.repeat', 'bool', 'f_repeat_replay', { def: 'false' })],
  dmdata: (p) => [f(p + '.api_key_file', 'text', 'f_api_key_file'), f(p + '.api_base', 'text', 'f_api_base', { def: 'https://api.dmdata.jp' }),
    f(p + '.test', 'select', 'f_dm_test', { options: ['no', 'including'], def: 'no' }),
    f(p + '.redundant', 'bool', 'f_redundant', { def: 'true' })],
};

function linkSection(kind, i, name) {
  const p = 'links.' + kind + '[' + i + ']';
  return { title: 's_links', suffix: ' — ' + kind + ' ' + (name || i + 1), prefix: p, block: true, fields: [
    f(p + '.name', 'text', 'f_name'),
    ...LINK_FIELDS[kind](p),
    f(p + '.silence_limit_s', 'int', 'f_silence', { min: 1, max: 86400 }),
  ] };
}

function relaySection(i, r, added) {
  const p = 'outputs.relay[' + i + ']';
  return { title: 's_relay', suffix: ' ' + (r.id !== undefined ? r.id : '') + (r.name ? ' — ' + r.name : ''), prefix: p, block: true, fields: [
    ...(added ? [f(p + '.id', 'int', 'f_id', { min: 1, max: 16 })] : []),
    f(p + '.name', 'text', 'f_name'),
    ...ruleFields(p, { min_class: '4' }),
    f(p + '.mode', 'select', 'f_rmode', { options: ['latched', 'pulse'], def: 'latched' }),
    f(p + '.pulse_ms', 'int', 'f_pulse_ms', { min: 100, max: 60000 }),
    f(p + '.hold_s', 'int', 'f_hold_s', { min: 0, max: 3600, def: '0' }),
    f(p + '.prestart_ms', 'int', 'f_prestart_ms', { min: 0, max: 10000, def: '0' }),
    f(p + '.release_on', 'release', 'f_release_on', { def: 'cancel, expiry, reset' }),
  ] };
}

function sections(doc) {
  const out = [
    { title: 's_site', prefix: 'site', fields: [
      f('site.lat', 'num', 'f_lat', { min: 20, max: 46 }),
      f('site.lon', 'num', 'f_lon', { min: 122, max: 154 }),
      f('site.arv400', 'num', 'f_arv400'),
      f('site.avs30', 'num', 'f_avs30'),
      f('site.area_code', 'text', 'f_area_code'),
    ] },
    { title: 's_prediction', prefix: 'prediction', fields: [
      f('prediction.mode', 'select', 'f_mode', { options: ['area', 'site'], def: 'area', note: 'licence_note' }),
      f('prediction.mw_offset', 'num', 'f_mw_offset', { def: '0.171' }),
      f('prediction.rock_factor', 'num', 'f_rock_factor', { def: '1.41' }),
    ] },
    { title: 's_alert', prefix: 'alert', fields: [
      f('alert.training', 'bool', 'f_training', { def: 'false' }),
      f('alert.test', 'bool', 'f_test', { def: 'false' }),
      f('alert.drill', 'bool', 'f_drill', { def: 'true' }),
      f('alert.deep', 'select', 'f_deep', { options: ACT_OPTIONS, def: 'act' }),
      f('alert.plum', 'select', 'f_plum', { options: ACT_OPTIONS, def: 'act' }),
      f('alert.single_station', 'select', 'f_single_station', { options: ACT_OPTIONS, def: 'act' }),
      f('alert.level_method', 'select', 'f_level_method', { options: ACT_OPTIONS, def: 'ignore' }),
      f('alert.assumed_hypocenter', 'select', 'f_assumed_hypocenter', { options: ACT_OPTIONS, def: 'act' }),
      f('alert.past_arrival_s', 'int_or_false', 'f_past_arrival_s', { def: '10' }),
      f('alert.event_expiry_s', 'int', 'f_event_expiry_s', { def: '180', min: 10, max: 3600 }),
    ] },
  ];
  ((doc.outputs || {}).relay || []).forEach((r, i) => out.push(relaySection(i, r, false)));
  out.push(
    { title: 's_audio_rule', prefix: 'outputs.audio', fields: [
      ...ruleFields('outputs.audio', { min_class: '4' }),
      f('outputs.audio.style', 'select', 'f_style', { options: ['numbers', 'phrase'], def: 'numbers' }),
      f('outputs.audio.countdown_from_s', 'int', 'f_countdown', { min: 0, max: 60, def: '10' }),
      f('outputs.audio.quiet_hours.start', 'time', 'f_quiet_start'),
      f('outputs.audio.quiet_hours.end', 'time', 'f_quiet_end'),
      f('outputs.audio.quiet_hours.min_class', 'select', 'f_quiet_min', { options: CLASS_OPTIONS, def: '5-' }),
    ] },
    { title: 's_audio_dev', prefix: 'audio', fields: [
      f('audio.backend', 'select', 'f_backend', { options: ['alsa', 'wav', 'null'] }),
      f('audio.device', 'text', 'f_device', { def: 'default' }),
      f('audio.volume', 'int', 'f_volume', { min: 0, max: 100, def: '80' }),
      f('audio.chime', 'text', 'f_chime', { def: 'alert', list: ['alert', 'bell'] }),
      f('audio.languages', 'list', 'f_languages', { def: 'ja, en' }),
      f('audio.repeat', 'int', 'f_repeat', { min: 1, max: 5, def: '2' }),
      f('audio.probe_level_db', 'int', 'f_probe_level', { min: -60, max: -10, def: '-30' }),
      f('audio.capture_device', 'text', 'f_capture_device'),
    ] },
    { title: 's_led', prefix: 'outputs.led', fields: ruleFields('outputs.led', { min_class: '4' }) },
    { title: 's_mqtt_rule', prefix: 'outputs.mqtt', fields: ruleFields('outputs.mqtt', { min_class: 'any' }) },
    { title: 's_mqtt', prefix: 'mqtt', fields: [
      f('mqtt.enabled', 'bool', 'f_enabled'),
      f('mqtt.host', 'text', 'f_host', { def: '127.0.0.1' }),
      f('mqtt.port', 'int', 'f_port', { min: 1, max: 65535, def: '1883' }),
      f('mqtt.device_id', 'text', 'f_device_id'),
      f('mqtt.topic_prefix', 'text', 'f_topic_prefix'),
      f('mqtt.username', 'text', 'f_username'),
      f('mqtt.keep_alive_s', 'int', 'f_keep_alive', { def: '15' }),
      f('mqtt.stale_after_ms', 'int', 'f_stale', { def: '3000' }),
      f('mqtt.home_assistant_discovery', 'bool', 'f_ha', { def: 'false' }),
      f('mqtt.cap', 'bool', 'f_cap', { def: 'false' }),
      f('mqtt.bms_ack', 'bool', 'f_bms_ack', { def: 'false' }),
      f('mqtt.probe_timeout_s', 'int', 'f_probe_timeout', { min: 1, max: 120, def: '10' }),
      f('mqtt.tls.enabled', 'bool', 'f_tls', { def: 'false' }),
      f('mqtt.tls.ca_file', 'text', 'f_ca_file'),
    ] },
    { title: 's_assurance', prefix: 'assurance', fields: [
      f('assurance.enabled', 'bool', 'f_assurance_enabled', { def: 'true' }),
      f('assurance.mqtt_probe_every_s', 'int', 'f_mqtt_probe_every', { min: 2, max: 86400, def: '300' }),
      f('assurance.relay_probe_every_h', 'int', 'f_relay_probe_every', { min: 1, max: 744, def: '24' }),
      f('assurance.relay_probe_window', 'text', 'f_relay_probe_window', { def: '03:00-04:00' }),
      f('assurance.audio_probe_every_h', 'int', 'f_audio_probe_every', { min: 0, max: 744, def: '24' }),
      f('assurance.start_delay_s', 'int', 'f_start_delay', { min: 0, max: 3600, def: '300' }),
      f('assurance.operator_max_age_days', 'int', 'f_operator_max_age', { min: 1, max: 400, def: '31' }),
      f('assurance.delivery_test_every_s', 'int', 'f_delivery_test_every', { min: 0, max: 604800 }),
      f('assurance.webhook.url', 'text', 'f_webhook_url'),
    ] },
  );
  const links = doc.links || {};
  for (const [kind, list] of Object.entries(links)) {
    if (!Array.isArray(list) || !LINK_FIELDS[kind]) continue;
    list.forEach((l, i) => out.push(linkSection(kind, i, l.name)));
  }
  return out;
}

// The value at a dotted path of the parsed document (undefined when absent).
function valueAt(doc, path) {
  let cur = doc;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const m = /^([A-Za-z0-9_-]+)\[(\d+)\]$/.exec(part);
    cur = m ? (cur[m[1]] || [])[Number(m[2])] : cur[part];
  }
  // TOML times come through serde as a wrapped string.
  if (cur && typeof cur === 'object' && !Array.isArray(cur) && '$__toml_private_datetime' in cur) {
    return cur.$__toml_private_datetime;
  }
  return cur;
}

const SETTINGS = { doc: null, revision: null, fields: [], editable: false, removed: new Set(), added: { relay: 0, relayIds: [], links: {} } };

function defaultLabel(fd) { return t('default') + (fd.def !== undefined ? ' (' + fd.def + ')' : ''); }

function input(fd, value) {
  const id = 'set-' + fd.path.replace(/[^A-Za-z0-9]/g, '_');
  let control;
  if (fd.kind === 'bool' || fd.kind === 'select') {
    control = el('select', { id, name: fd.path });
    control.append(el('option', { value: '' }, defaultLabel(fd)));
    const opts = fd.kind === 'bool' ? [['true', t('yes')], ['false', t('no')]] : fd.options.map((o) => [o, o]);
    for (const [v, label] of opts) control.append(el('option', { value: v }, label));
    control.value = value === undefined ? '' : String(value);
  } else if (fd.kind === 'release') {
    control = el('span', { id, class: 'checks' });
    const set = Array.isArray(value) ? value : [];
    for (const r of ['cancel', 'expiry', 'reset']) {
      const cb = el('input', { type: 'checkbox', value: r, name: fd.path });
      cb.checked = set.includes(r);
      control.append(el('label', { class: 'inline' }, cb, t('rel_' + r)));
    }
    if (fd.def) control.append(el('small', { class: 'hint' }, '(' + t('default_is') + fd.def + ')'));
  } else {
    const attrs = { id, name: fd.path, placeholder: fd.def !== undefined ? t('default_is') + fd.def : t('default') };
    if (fd.kind === 'num') Object.assign(attrs, { inputmode: 'decimal' });
    if (fd.kind === 'int') Object.assign(attrs, { inputmode: 'numeric' });
    if (fd.list) attrs.list = id + '-list';
    control = el('input', attrs);
    if (value !== undefined) control.value = Array.isArray(value) ? value.join(', ') : String(value);
  }
  const wrap = el('label', { class: 'field', 'data-path': fd.path }, el('span', {}, t(fd.label)), control);
  if (fd.list) wrap.append(el('datalist', { id: id + '-list' }, ...fd.list.map((o) => el('option', { value: o }))));
  if (fd.note) wrap.append(el('small', { class: 'hint note-' + fd.path.replace(/\W/g, '_') }, t(fd.note)));
  wrap.append(el('small', { class: 'field-error', hidden: '' }));
  return wrap;
}

// What a field now says, as the JSON value to store (null: leave the key out).
function readField(fd) {
  const wrap = document.querySelector('[data-path="' + CSS.escape(fd.path) + '"]');
  if (!wrap) return undefined;
  if (fd.kind === 'release') {
    const on = [...wrap.querySelectorAll('input[type=checkbox]')].filter((c) => c.checked).map((c) => c.value);
    return on.length ? on : null;
  }
  const raw = wrap.querySelector('input, select').value.trim();
  if (raw === '') return null;
  switch (fd.kind) {
    case 'bool': return raw === 'true';
    case 'num': { const n = Number(raw); return Number.isFinite(n) ? n : raw; }
    case 'int': { const n = Number(raw); return Number.isInteger(n) ? n : raw; }
    case 'int_or_false': { if (raw === 'false') return false; const n = Number(raw); return Number.isInteger(n) ? n : raw; }
    case 'list': return raw.split(',').map((x) => x.trim()).filter((x) => x);
    default: return raw;
  }
}

function original(fd) {
  const v = valueAt(SETTINGS.doc, fd.path);
  return v === undefined ? null : v;
}

function inRemoved(path) {
  for (const p of SETTINGS.removed) if (path.startsWith(p + '.')) return true;
  return false;
}

function changes() {
  const out = [];
  for (const p of SETTINGS.removed) out.push({ path: p, value: null });
  for (const fd of SETTINGS.fields) {
    if (inRemoved(fd.path)) continue;
    const now = readField(fd);
    if (now === undefined) continue;
    if (JSON.stringify(now) !== JSON.stringify(original(fd))) out.push({ path: fd.path, value: now });
  }
  return out;
}

function clearProblems() {
  for (const e of document.querySelectorAll('#settings-body .field-error')) { e.textContent = ''; e.hidden = true; }
  for (const e of document.querySelectorAll('#settings-body .invalid')) e.classList.remove('invalid');
  $('settings-result').replaceChildren();
}

// Every problem beside its field; a problem of a block (or of no field shown) beside the
// block, the rest in one list at the top.
function showProblems(problems) {
  const rest = [];
  for (const p of problems) {
    let target = p.path ? document.querySelector('#settings-body [data-path="' + CSS.escape(p.path) + '"]') : null;
    if (!target && p.path) {
      let best = null;
      for (const e of document.querySelectorAll('#settings-body [data-path]')) {
        const ep = e.dataset.path;
        if (p.path.startsWith(ep + '.') || p.path.startsWith(ep + '[')) {
          if (!best || ep.length > best.dataset.path.length) best = e;
        }
      }
      target = best;
    }
    const err = target && target.querySelector(':scope > .field-error');
    if (err) {
      err.textContent = (err.textContent ? err.textContent + ' ' : '') + (target.classList.contains('field') ? '' : p.path + ': ') + p.message;
      err.hidden = false;
      target.classList.add('invalid');
    } else {
      rest.push(p);
    }
  }
  if (rest.length) {
    $('settings-result').append(el('div', { class: 'message' }, el('strong', {}, t('other_problems')),
      el('ul', {}, ...rest.map((p) => el('li', {}, (p.path ? p.path + ': ' : '') + p.message)))));
  }
  const first = document.querySelector('#settings-body .invalid');
  if (first) first.scrollIntoView({ block: 'center' });
}

function diffTable(diff) {
  return el('table', { class: 'diff' },
    el('thead', {}, el('tr', {}, el('th', {}, t('path')), el('th', {}, t('old')), el('th', {}, t('new')))),
    el('tbody', {}, ...diff.map((d) => el('tr', {}, el('td', {}, d.path),
      el('td', {}, d.old === null || d.old === undefined ? t('default') : d.old),
      el('td', {}, d.new === null || d.new === undefined ? t('default') : d.new)))));
}

function result(kind, text, extra) {
  $('settings-result').append(el('div', { class: kind === 'ok' ? 'message info' : 'message', role: 'status' }, text, ...(extra || [])));
}

async function submit(save, body) {
  clearProblems();
  body.revision = SETTINGS.revision;
  const r = save ? await api('/api/settings', 'PUT', body) : await api('/api/settings/check', 'POST', body);
  const check = save ? (r.data && r.data.check) : r.data;
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (save && r.status === 200) {
    const d = r.data;
    if (!d.diff.length) { result('ok', t('no_changes')); return; }
    if (SETTINGS.wizard) { finishWizard(); message(t('wizard_done'), true); return; }
    result('ok', d.apply === 'now' ? t('saved_now') : t('saved_later'), [diffTable(d.diff)]);
    // The channels the change touched are probed once it is in effect: watch for it.
    SETTINGS.proofWatch = { from: SETTINGS.revision, until: 0 };
    $('settings-result').append(el('div', { id: 'settings-proofs', class: 'message info', hidden: '' }));
    if (d.notes && d.notes.length) result('ok', t('notes') + ': ' + d.notes.join(' / '));
    await load(true);
    return;
  }
  // A check also shows what the checked settings would do.
  if (!save) refreshWhatIf(body);
  if (!check || r.status >= 500 || r.status === 400) { result('bad', (r.data && r.data.message) || String(r.status)); return; }
  if (check.conflict) { result('bad', t('conflict')); return; }
  if (!check.valid) { result('bad', t('problems')); showProblems(check.problems || []); return; }
  if (!check.diff.length) result('ok', t('no_changes'));
  else result('ok', t('checked_ok'), [diffTable(check.diff)]);
}

function onFormSubmit(save) {
  const c = changes();
  if (!c.length && save && SETTINGS.wizard) { finishWizard(); return; }
  if (!c.length) { clearProblems(); result('ok', t('no_changes')); if (!save) refreshWhatIf({}); return; }
  submit(save, { changes: c });
}

// The first-boot wizard shows only what an installer must set before anything else.
const WIZARD_SECTIONS = ['s_site', 's_prediction', 's_links', 's_mqtt'];

function renderSettings(data, keepResult) {
  SETTINGS.data = data;
  const wizard = SETTINGS.wizard;
  SETTINGS.doc = data.document || {};
  SETTINGS.revision = data.revision;
  SETTINGS.editable = data.editable;
  const body = $('settings-body');
  const saved = keepResult && $('settings-result') ? [...$('settings-result').childNodes] : [];
  const parts = [el('p', { id: 'settings-state', class: 'hint' }), el('div', { id: 'settings-result' }, ...saved)];
  if (!data.editable) {
    if (wizard) { finishWizard(); return; }
    parts.push(el('p', { class: 'message' }, t('not_editable')));
    body.replaceChildren(...parts);
    return;
  }
  const form = el('form', { id: 'settings-form', class: 'settings', novalidate: '' });
  SETTINGS.fields = [];
  SETTINGS.removed = new Set();
  SETTINGS.added = { relay: 0, relayIds: [], links: {} };
  for (const sec of sections(SETTINGS.doc)) {
    if (!wizard || WIZARD_SECTIONS.includes(sec.title)) form.append(fieldset(sec, {}));
  }
  const kinds = el('select', { id: 'settings-link-kind' }, ...['jma_tcp', 'jma_serial', 'dmdata'].map((k) => el('option', { value: k }, k)));
  const adders = el('div', { id: 'settings-adders', class: 'adders' },
    el('button', { type: 'button', id: 'settings-add-relay', class: 'secondary', ...(wizard ? { hidden: '' } : {}) }, t('add_relay')),
    kinds, el('button', { type: 'button', id: 'settings-add-link', class: 'secondary' }, t('add_link')));
  form.append(adders);
  const buttons = el('div', { class: 'buttons' },
    el('button', { type: 'button', id: 'settings-check' }, t('check')),
    el('button', { type: 'submit', id: 'settings-save' }, wizard ? t('wizard_save') : t('save')),
    wizard ? el('button', { type: 'button', id: 'settings-skip', class: 'secondary' }, t('wizard_skip'))
      : el('button', { type: 'button', id: 'settings-reload', class: 'secondary' }, t('reload')));
  form.append(buttons);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); onFormSubmit(true); });
  const text = el('textarea', { id: 'settings-text', rows: '24', spellcheck: 'false' });
  text.value = data.text || '';
  const raw = el('details', { id: 'settings-raw' }, el('summary', {}, t('s_text')),
    el('p', { class: 'hint' }, t('text_hint')), text,
    el('div', { class: 'buttons' }, el('button', { type: 'button', id: 'settings-text-check' }, t('check')),
      el('button', { type: 'button', id: 'settings-text-save' }, t('save_text'))));
  if (wizard) parts.unshift(el('p', { class: 'message info' }, t('wizard_intro')));
  parts.push(form);
  if (!wizard) parts.push(whatifCard(), raw);
  body.replaceChildren(...parts);
  $('view-settings').querySelector('h2').textContent = wizard ? t('wizard_title') : t('settings_title');
  addSuggestButton(form);
  addChimeUpload(form);
  $('settings-add-relay').addEventListener('click', addRelay);
  $('settings-add-link').addEventListener('click', () => addLink($('settings-link-kind').value));
  $('settings-check').addEventListener('click', () => onFormSubmit(false));
  if (wizard) $('settings-skip').addEventListener('click', finishWizard);
  else $('settings-reload').addEventListener('click', () => load(false));
  // Found in `raw`, which the wizard does not show.
  raw.querySelector('#settings-text-check').addEventListener('click', () => submit(false, { text: text.value }));
  raw.querySelector('#settings-text-save').addEventListener('click', () => submit(true, { text: text.value }));
  const mode = form.querySelector('[name="prediction.mode"]');
  const note = form.querySelector('.note-prediction_mode');
  const syncNote = () => { if (note) note.hidden = mode.value !== 'site'; };
  if (mode) { mode.addEventListener('change', syncNote); syncNote(); }
  if (lastStatus) settingsStatus(lastStatus);
  // The settings in force (opened, reloaded, or just saved).
  if (!wizard) refreshWhatIf({});
}

// One section as a fieldset; `prefill` gives values for a block just added (they count
// as changes, since the file does not have them yet).
function fieldset(sec, prefill) {
  const fs = el('fieldset', { 'data-path': sec.prefix }, el('legend', {}, t(sec.title) + (sec.suffix || '')));
  if (sec.block) {
    const rm = el('button', { type: 'button', class: 'remove secondary', 'data-block': sec.prefix }, t('remove'));
    rm.addEventListener('click', () => {
      const gone = !SETTINGS.removed.has(sec.prefix);
      if (gone) SETTINGS.removed.add(sec.prefix); else SETTINGS.removed.delete(sec.prefix);
      fs.classList.toggle('removed', gone);
      rm.textContent = gone ? t('undo_remove') : t('remove');
      for (const c of fs.querySelectorAll('input, select')) c.disabled = gone;
    });
    fs.append(rm);
  }
  fs.append(el('small', { class: 'field-error', hidden: '' }));
  // Replay links are set on the appliance only (what they read shows in history).
  const readOnly = sec.prefix.startsWith('links.replay');
  for (const fd of sec.fields) {
    const v = valueAt(SETTINGS.doc, fd.path);
    const field = input(fd, v !== undefined ? v : prefill[fd.path.slice(sec.prefix.length + 1)]);
    if (readOnly) for (const c of field.querySelectorAll('input, select')) c.disabled = true;
    else SETTINGS.fields.push(fd);
    fs.append(field);
  }
  if (readOnly) {
    const rm = fs.querySelector('button.remove');
    if (rm) rm.hidden = true;
    fs.append(el('small', { class: 'hint' }, t('replay_read_only')));
  }
  return fs;
}

function addRelay() {
  const existing = ((SETTINGS.doc.outputs || {}).relay || []);
  const i = existing.length + SETTINGS.added.relay;
  SETTINGS.added.relay += 1;
  const id = Math.max(0, ...existing.map((r) => Number(r.id) || 0), ...SETTINGS.added.relayIds) + 1;
  SETTINGS.added.relayIds.push(id);
  const sec = relaySection(i, { id }, true);
  $('settings-adders').before(fieldset(sec, { id, name: 'relay ' + id, min_class: '4' }));
}

function addLink(kind) {
  const existing = ((SETTINGS.doc.links || {})[kind] || []);
  const n = SETTINGS.added.links[kind] || 0;
  SETTINGS.added.links[kind] = n + 1;
  const i = existing.length + n;
  const sec = linkSection(kind, i, '');
  const prefill = { name: kind.replace('_', '-') + '-' + (i + 1) };
  $('settings-adders').before(fieldset(sec, prefill));
}

/** How long the page waits for a probe of a changed channel before asking a person. */
const PROOF_WAIT_MS = 30000;

/** After a save: each channel the change touched, and whether it has been seen working
 * since the change took effect (the daemon probes what it can at once). */
function renderProofs(s) {
  const w = SETTINGS.proofWatch;
  const box = $('settings-proofs');
  const st = s.settings || {};
  if (!w || !box || st.pending || !st.revision || st.revision === w.from) return;
  const applied = Date.parse(st.applied_at || '') || 0;
  if (!w.until) w.until = Date.now() + PROOF_WAIT_MS;
  const channels = st.changed_channels || [];
  if (!channels.length) { box.hidden = true; return; }
  const names = s.output_names || {};
  const items = channels.map((ch) => {
    const v = (s.verification || {})[ch] || {};
    const last = v.last && Date.parse(v.last.at) >= applied - 1000 ? v.last : null;
    let state; let text;
    if (last && last.ok) { state = 'ok'; text = t('proof_ok') + (last.detail ? ' — ' + last.detail : ''); }
    else if (last) { state = 'bad'; text = t('proof_bad') + (last.detail ? ' — ' + last.detail : ''); }
    else if (ch === 'led' || ch === 'audio' || Date.now() > w.until) { state = 'person'; text = t('proof_by_person'); }
    else { state = 'waiting'; text = t('proof_waiting'); }
    const cls = state === 'ok' ? 'ok' : state === 'waiting' ? 'hint' : state === 'bad' ? 'bad' : 'warn';
    return el('li', { 'data-proof': ch, 'data-state': state },
      el('span', {}, names[ch] ? ch + ' ' + names[ch] : ch), ' ', el('span', { class: cls }, text));
  });
  box.hidden = false;
  box.replaceChildren(el('strong', {}, t('proofs_title')), el('ul', { class: 'rows' }, ...items));
}

function settingsStatus(s) {
  renderProofs(s);
  const p = $('settings-state');
  if (!p || !s.settings) return;
  const st = s.settings;
  p.textContent = st.pending ? t('pending') + t('pending_' + st.pending) : t('applied_rev') + (st.revision || '—') + (st.applied_at ? ' · ' + new Date(st.applied_at).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB') : '');
  p.className = st.pending ? 'message' : 'hint';
}

async function load(keepResult) {
  const r = await api('/api/settings');
  if (r.status === 401) { show('login'); message(t('session_expired')); return; }
  if (r.status !== 200) { $('settings-body').replaceChildren(el('p', { class: 'message' }, (r.data && r.data.message) || String(r.status))); return; }
  renderSettings(r.data, keepResult);
}

// The nearest forecast area to the site, as the settings check suggests it (a note on
// site.area_code), offered beside the field.
function addSuggestButton(form) {
  const wrap = form.querySelector('[data-path="site.area_code"]');
  if (!wrap) return;
  const btn = el('button', { type: 'button', id: 'settings-suggest-area', class: 'small secondary' }, t('suggest_area'));
  const hint = el('small', { id: 'settings-area-hint', class: 'hint' });
  wrap.append(btn, hint);
  btn.addEventListener('click', async () => {
    const pick = (p) => { const fd = SETTINGS.fields.find((x) => x.path === p); return fd ? readField(fd) : null; };
    const changes = [
      { path: 'site.lat', value: pick('site.lat') },
      { path: 'site.lon', value: pick('site.lon') },
      { path: 'site.area_code', value: null },
    ];
    const r = await api('/api/settings/check', 'POST', { revision: SETTINGS.revision, changes });
    const notes = (r.data && r.data.notes) || [];
    const note = notes.find((n) => n.startsWith('site.area_code:'));
    const code = note && /using "(\d{3})"/.exec(note);
    const bad = ((r.data && r.data.problems) || []).filter((p) => p.path === 'site.lat' || p.path === 'site.lon');
    if (code) {
      wrap.querySelector('input').value = code[1];
      const m = /using "(\d{3})" \(([^,]+), centroid ([\d.]+) km away\)/.exec(note);
      hint.textContent = m ? t('suggested_area').replace('{code}', m[1]).replace('{name}', m[2]).replace('{km}', m[3])
        : note.replace(/^site\.area_code:\s*/, '');
    } else {
      hint.textContent = bad.length ? bad.map((p) => p.path + ': ' + p.message).join(' ') : t('suggest_none');
    }
  });
}

// An operator's own chime: uploaded (checked by the appliance as a 16-bit PCM WAV of at
// most 10 s), then put in the chime field as a change to save.
function addChimeUpload(form) {
  const wrap = form.querySelector('[data-path="audio.chime"]');
  if (!wrap) return;
  const file = el('input', { type: 'file', id: 'settings-chime-file', accept: '.wav,audio/wav' });
  const hint = el('small', { id: 'settings-chime-hint', class: 'hint' }, t('chime_upload_hint'));
  // A cell of its own beside the chime field (not inside its label: a click on the
  // field's text must not open the file picker).
  wrap.after(el('div', { class: 'field', id: 'settings-chime-upload' },
    el('label', { for: 'settings-chime-file' }, el('span', {}, t('chime_upload'))), file, hint));
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    // Only a plain name reaches the appliance; anything else is refused there too.
    const name = f.name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-64);
    const r = await fetch('/api/uploads/chime?name=' + encodeURIComponent(name), {
      method: 'POST', credentials: 'same-origin', body: f,
      headers: { 'Content-Type': 'audio/wav', 'X-CSRF-Token': csrf || '' },
    });
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    if (r.status === 200 && data && data.path) {
      wrap.querySelector('input[name="audio.chime"]').value = data.path;
      hint.textContent = t('chime_uploaded').replace('{s}', Number(data.seconds).toFixed(1));
      hint.className = 'hint ok';
    } else {
      hint.textContent = apiError({ status: r.status, data });
      hint.className = 'field-error';
    }
  });
}

function finishWizard() {
  SETTINGS.wizard = false;
  startDashboard();
}

// A language switch redraws the form unless it holds unsaved edits.
function settingsLang() {
  if (SETTINGS.data && !$('view-settings').hidden && !changes().length) renderSettings(SETTINGS.data, true);
  else drawWhatIf();
}

// ---------------------------------------------------------------- what would happen
// Reference earthquakes run through the engine with the settings being edited
// (POST /api/settings/whatif, the same body as a check): the site's class and which
// outputs operate, when. Refreshed when the form is opened, on every check and after a
// save. Only the newest answer is drawn (`seq`).

const WHATIF = { seq: 0 };

function fmt(key, vars) {
  let s = t(key);
  for (const [k, v] of Object.entries(vars || {})) s = s.split('{' + k + '}').join(String(v));
  return s;
}

const CLASS_JA = { '5-': '5弱', '5+': '5強', '6-': '6弱', '6+': '6強' };
function classText(c) {
  if (c === null || c === undefined) return t('w_none');
  return lang === 'ja' ? (CLASS_JA[c] || c) : c;
}

function secs(ms) { return (ms / 1000).toFixed(1); }

function outputLabel(o) {
  const m = /^relay:(\d+)$/.exec(o.output);
  const base = m ? fmt('relay_n', { n: m[1] }) : (o.output === 'led' ? t('led') : o.output === 'audio' ? t('s_audio_dev') : 'MQTT');
  return o.name ? base + ' ' + o.name : base;
}

// What one output does, as short phrases.
function outputDoes(o) {
  if (!o.enabled) return [t('w_disabled')];
  if (!o.fires) return [t('w_no_fire')];
  const parts = [];
  const countdown = [];
  for (const a of o.actions || []) {
    const at = secs(a.offset_ms);
    const c = t('c_' + a.cause);
    switch (a.action) {
      case 'on': parts.push(fmt('w_on', { t: at }) + (a.pulse_ms ? fmt('w_pulse', { ms: a.pulse_ms }) : '')); break;
      case 'off': parts.push(fmt('w_off', { t: at, c })); break;
      case 'announce': parts.push(fmt('w_says', { t: at, text: lang === 'ja' ? a.text_ja : a.text_en })); break;
      case 'countdown': countdown.push(a.seconds); break;
      case 'stop': parts.push(fmt('w_stop', { t: at, c })); break;
      case 'led': parts.push(fmt('w_led', { t: at, p: t('led_' + a.pattern) })); break;
      case 'publish': parts.push(fmt('w_publish', { t: at, state: t('w_state_' + a.state) })); break;
      default: parts.push(a.action + ' ' + at);
    }
  }
  if (countdown.length) parts.push(fmt('w_countdown', { a: countdown[0], b: countdown[countdown.length - 1] }));
  if (o.relay && o.relay.prestart_ms) parts.push(fmt('w_prestart', { ms: o.relay.prestart_ms }));
  if (o.held_at_end) parts.push(t('w_held'));
  if (o.broker_configured === false) parts.push(t('w_no_broker'));
  return parts;
}

function arrivalText(pr) {
  const state = pr.arrival && pr.arrival.state;
  if (state === 'at' && typeof pr.seconds_to_s === 'number') {
    return pr.seconds_to_s >= 0 ? fmt('w_s_in', { s: pr.seconds_to_s.toFixed(1) }) : fmt('w_s_ago', { s: (-pr.seconds_to_s).toFixed(1) });
  }
  if (state === 'arrived') return t('w_arrived');
  if (state === 'imminent') return t('w_imminent');
  return t('w_unknown_arrival');
}

function epicentreText(e) {
  if (!e) return '';
  const name = e.name || '—';
  if (e.assumed) return fmt('w_assumed', { name });
  return fmt('w_epicentre', {
    name, km: Math.round(e.distance_km || 0), dir: lang === 'ja' ? e.direction_ja : e.direction_en,
    depth: e.depth_km, m: typeof e.magnitude === 'number' ? e.magnitude.toFixed(1) : '—',
  });
}

function scenarioBlock(p) {
  const pr = p.prediction || {};
  const facts = [t('w_class') + ' ' + classText(pr.class), arrivalText(pr)];
  if (pr.warning) facts.push(t('warning'));
  const verdict = p.acted ? el('p', { class: 'ok' }, t('w_acts'))
    : el('p', { class: 'warn' }, t('w_not_acted') + (I18N.en['r_' + p.reason] ? t('r_' + p.reason) : (p.reason || '')));
  const rows = (p.outputs || []).map((o) => el('li', { 'data-output': o.output, 'data-fires': String(Boolean(o.fires)) },
    el('span', {}, outputLabel(o)), el('span', { class: o.fires ? 'warn' : 'hint' }, outputDoes(o).join(' · '))));
  return el('div', {
    class: 'whatif-scenario', 'data-scenario': p.scenario, 'data-class': pr.class || '', 'data-acted': String(Boolean(p.acted)),
  },
  el('h4', {}, lang === 'ja' ? p.title_ja : p.title_en),
  el('p', { class: 'hint' }, epicentreText(p.epicentre)),
  el('p', {}, facts.join(' · ')),
  verdict,
  el('ul', { class: 'rows whatif-outputs' }, ...rows));
}

function whatifCard() {
  return el('div', { id: 'settings-whatif', class: 'card whatif', 'data-state': 'loading', 'data-seq': '0' },
    el('h3', {}, t('w_title')),
    el('p', { class: 'hint' }, t('w_intro')),
    el('p', { id: 'settings-whatif-basis', class: 'hint' }, t('w_loading')),
    el('div', { id: 'settings-whatif-body' }),
    el('p', { class: 'hint' }, t('w_note')));
}

// `body`: the check's body (key changes or the text), or {} for the settings in force.
async function refreshWhatIf(body) {
  const card = $('settings-whatif');
  if (!card) return;
  const seq = ++WHATIF.seq;
  const draft = Boolean(body.text !== undefined || (body.changes && body.changes.length));
  card.dataset.state = 'loading';
  $('settings-whatif-basis').textContent = t('w_loading');
  const r = await api('/api/settings/whatif', 'POST', Object.assign({ revision: SETTINGS.revision }, body));
  if (seq !== WHATIF.seq || !$('settings-whatif')) return;
  const basis = $('settings-whatif-basis');
  const out = $('settings-whatif-body');
  const done = (state) => { card.dataset.state = state; card.dataset.draft = String(draft); card.dataset.seq = String(seq); };
  if (r.status !== 200 || !r.data) {
    basis.textContent = t('w_failed') + ((r.data && r.data.message) || String(r.status));
    out.replaceChildren();
    done('error');
    return;
  }
  if (!r.data.previews || !r.data.previews.length) {
    basis.textContent = t('w_invalid');
    out.replaceChildren();
    done('invalid');
    return;
  }
  WHATIF.last = { previews: r.data.previews, draft };
  drawWhatIf();
  done('ready');
}

// Draws the last answer (again, in the page's language after a switch).
function drawWhatIf() {
  const card = $('settings-whatif');
  if (!card || !WHATIF.last) return;
  const { previews, draft } = WHATIF.last;
  card.querySelector('h3').textContent = t('w_title');
  $('settings-whatif-basis').textContent = draft ? t('w_draft') : t('w_saved');
  $('settings-whatif-body').replaceChildren(...previews.map(scenarioBlock));
}

PAGES.settings = {
  open: () => load(false),
  status: settingsStatus,
  lang: settingsLang,
  // First boot, right after the password was set: site, prediction, links, MQTT.
  wizard: () => { SETTINGS.wizard = true; show('settings'); },
};
