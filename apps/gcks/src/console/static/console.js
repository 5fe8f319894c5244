// GroupSec GCKS console: a small single-page client of the REST API (/api/v1). No framework;
// every value from the server is written with textContent, never as HTML.

const TOKEN_KEY = 'groupsec.adminToken';
const main = document.getElementById('main');

// ---- tiny DOM helper ---------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 2500);
}

// ---- API -----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = '#/signin';
    throw new ApiError(401, await res.json().catch(() => null));
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---- forms ---------------------------------------------------------------------------------------
// A field: { name, label, type: text|number|select|checkbox|list|textarea|password, options, nullable, placeholder }
function fieldInput(key, f, value) {
  const id = `${key}-${f.name}`;
  if (f.type === 'checkbox') {
    return h('label', { class: 'check' }, h('input', { type: 'checkbox', id, name: f.name, checked: (value ?? f.default) === true }), f.label);
  }
  let input;
  if (f.type === 'select') {
    input = h('select', { id, name: f.name }, f.nullable || f.optional ? h('option', { value: '' }, '(default)') : null,
      f.options.map((o) => h('option', { value: o, selected: value === o }, o)));
  } else if (f.type === 'textarea') {
    input = h('textarea', { id, name: f.name, placeholder: f.placeholder });
    input.value = value ?? '';
  } else {
    input = h('input', {
      id, name: f.name, type: f.type === 'number' ? 'number' : f.type === 'password' ? 'password' : 'text',
      placeholder: f.placeholder ?? '', value: value === null || value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value,
    });
  }
  return h('label', { for: id }, f.label, input);
}

function readForm(form, fields, original) {
  const out = {};
  for (const f of fields) {
    const el = form.elements.namedItem(f.name);
    let v;
    if (f.type === 'checkbox') v = el.checked;
    else if (f.type === 'number') v = el.value.trim() === '' ? (f.nullable ? null : undefined) : Number(el.value);
    else if (f.type === 'list') v = el.value.split(',').map((s) => s.trim()).filter(Boolean);
    else v = el.value.trim() === '' ? (f.nullable ? null : undefined) : el.value.trim();
    if (original) {
      // Edit: send only what changed.
      if (JSON.stringify(v ?? null) !== JSON.stringify(original[f.name] ?? null) && v !== undefined) out[f.name] = v;
    } else if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0 && f.omitEmpty)) {
      if (f.type === 'checkbox' && v === f.default) continue;
      out[f.name] = v;
    }
  }
  return out;
}

function showErrors(form, err) {
  form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
  form.querySelectorAll('.field-error, .error-box').forEach((e) => e.remove());
  const box = h('div', { class: 'error-box', role: 'alert' }, err.body?.message ?? err.message);
  form.prepend(box);
  for (const e of err.body?.errors ?? []) {
    const el = form.elements.namedItem(e.field.split('.')[0]);
    if (el && el.classList) {
      el.classList.add('invalid');
      el.closest('label')?.append(h('span', { class: 'field-error' }, e.message));
    }
  }
}

function formView({ key, fields, values, submitLabel, onSubmit, onCancel }) {
  const form = h('form', { class: 'grid', novalidate: true }, fields.map((f) => fieldInput(key, f, values?.[f.name])),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary' }, submitLabel),
      onCancel ? h('button', { type: 'button', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await onSubmit(readForm(form, fields, values));
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) showErrors(form, err);
      else if (!(err instanceof ApiError)) showErrors(form, err);
    }
  });
  return form;
}

function table(columns, rows, empty) {
  if (rows.length === 0) return h('div', { class: 'empty' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-id': r.id }, columns.map((c) => h('td', { class: c.class }, c.value(r)))))));
}

// ---- field definitions (mirroring the API's DTOs) -----------------------------------------------
const GROUP_FIELDS = [
  { name: 'name', label: 'Name', placeholder: 'video-feed' },
  { name: 'address', label: 'Group address', placeholder: '239.1.2.3' },
  { name: 'addressType', label: 'Address type', type: 'select', options: ['multicast', 'broadcast', 'anycast'], optional: true },
  { name: 'sourceMode', label: 'ASM / SSM', type: 'select', options: ['asm', 'ssm'], optional: true },
  { name: 'ssmSources', label: 'SSM sources (comma-separated)', type: 'list', omitEmpty: true },
  { name: 'serviceModel', label: 'Service model', type: 'select', options: ['unidirectional', 'per-speaker', 'any-to-any'], optional: true },
  { name: 'rekeyTransport', label: 'Rekey channel', type: 'select', options: ['multicast', 'unicast'], optional: true },
  { name: 'rekeyAddress', label: 'Rekey address', nullable: true, placeholder: 'default: group address' },
  { name: 'rekeyPort', label: 'Rekey port', type: 'number', nullable: true, placeholder: '4500' },
  { name: 'maxSpeakers', label: 'Max speakers', type: 'number' },
  { name: 'lkhDegree', label: 'LKH degree', type: 'number', placeholder: '4' },
  { name: 'enabled', label: 'Enabled', type: 'checkbox', default: true },
];

const POLICY_FIELDS = [
  { name: 'name', label: 'Name', placeholder: 'video' },
  { name: 'position', label: 'Position', type: 'number', placeholder: 'last' },
  { name: 'sourcePrefix', label: 'Source prefix', placeholder: 'any' },
  { name: 'destinationPrefix', label: 'Destination prefix', placeholder: 'group address' },
  { name: 'protocol', label: 'IP protocol', type: 'number', nullable: true, placeholder: 'any' },
  { name: 'sourcePort', label: 'Source port', type: 'number', nullable: true, placeholder: 'any' },
  { name: 'destinationPort', label: 'Destination port', type: 'number', nullable: true, placeholder: 'any' },
  { name: 'action', label: 'Action', type: 'select', options: ['protect', 'bypass', 'discard'], optional: true },
  { name: 'direction', label: 'Direction', type: 'select', options: ['symmetric', 'sender-only', 'receiver-only'], optional: true },
  { name: 'mode', label: 'Mode', type: 'select', options: ['tunnel', 'transport'], optional: true },
  { name: 'addressPreservation', label: 'Address preservation', type: 'select', options: ['none', 'source', 'destination', 'both'], optional: true },
  { name: 'espTransform', label: 'ESP transform', type: 'select', options: ['aes-gcm-128', 'aes-gcm-256', 'aes-cbc-128-hmac-sha256', 'aes-cbc-256-hmac-sha256'], optional: true },
  { name: 'dataOriginAuth', label: 'Data origin auth (stored, not yet applied)', type: 'select', options: ['none', 'rsa-pkcs1-sha256', 'ecdsa-p256-sha256', 'ed25519'], optional: true },
  { name: 'replayWindow', label: 'Replay window', type: 'number', placeholder: '64' },
  { name: 'tekLifetime', label: 'TEK lifetime (s)', type: 'number', placeholder: '3600' },
  { name: 'kekLifetime', label: 'KEK lifetime (s)', type: 'number', placeholder: '3600' },
  { name: 'atd', label: 'ATD (s)', type: 'number', placeholder: '15' },
  { name: 'dtd', label: 'DTD (s)', type: 'number', placeholder: '15' },
  { name: 'rekeyRetransmissions', label: 'Rekey retransmissions', type: 'number', placeholder: '2' },
  { name: 'leaveBehaviour', label: 'On member leave', type: 'select', options: ['immediate', 'batched'], optional: true },
  { name: 'leaveBatchInterval', label: 'Batch interval (s)', type: 'number', nullable: true },
  { name: 'udpEncapsulation', label: 'UDP encapsulation (RFC 3948)', type: 'checkbox', default: false },
  { name: 'antiReplay', label: 'Anti-replay', type: 'select', options: ['true', 'false'], optional: true },
  { name: 'rekeyRollover', label: 'Rekey rollover', type: 'checkbox', default: true },
];

const PAD_FIELDS = [
  { name: 'kind', label: 'Rule', type: 'select', options: ['member', 'gcks'], optional: true },
  { name: 'idType', label: 'Identity type', type: 'select', options: ['subject', 'san-dns', 'san-email', 'san-ip', 'san-uri', 'psk'] },
  { name: 'pattern', label: 'Identity or pattern (*)', placeholder: '*.example.com' },
  { name: 'role', label: 'Role', type: 'select', options: ['receiver', 'speaker', 'both'], optional: true },
  { name: 'psk', label: 'Pre-shared key (psk only)', type: 'password' },
];

// Kind and identity type are fixed once a rule exists; a new PSK replaces the stored one.
const PAD_EDIT_FIELDS = PAD_FIELDS.filter((f) => ['pattern', 'role', 'psk'].includes(f.name));

const ANCHOR_FIELDS = [
  { name: 'name', label: 'Name', placeholder: 'corp-root' },
  { name: 'pem', label: 'CA certificate (PEM)', type: 'textarea', placeholder: '-----BEGIN CERTIFICATE-----' },
];

function fixBooleans(body) {
  if (body.antiReplay === 'true') body.antiReplay = true;
  if (body.antiReplay === 'false') body.antiReplay = false;
  return body;
}

// ---- views ---------------------------------------------------------------------------------------
function render(...nodes) {
  main.replaceChildren(...nodes);
}

function signInView() {
  document.getElementById('nav').hidden = true;
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'current-password', placeholder: 'admin token' });
  const form = h('form', {}, h('label', { for: 'token' }, 'Admin token (from the file the GCKS printed at first start)', input),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    const res = await fetch('/api/v1/groups', { headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
    if (res?.ok) {
      sessionStorage.setItem(TOKEN_KEY, token);
      location.hash = '#/groups';
      if (location.hash === '#/groups') route();
      return;
    }
    form.querySelector('.error-box')?.remove();
    form.prepend(h('div', { class: 'error-box', role: 'alert' }, res ? 'That token was not accepted.' : 'The GCKS did not answer.'));
  });
  render(h('section', { class: 'card signin' }, h('h1', {}, 'Sign in'), form));
  input.focus();
}

async function groupsView() {
  const groups = await api('GET', '/groups');
  const createBox = h('details', {}, h('summary', {}, 'New group'),
    formView({
      key: 'group', fields: GROUP_FIELDS, values: null, submitLabel: 'Create group',
      onSubmit: async (body) => {
        const g = await api('POST', '/groups', body);
        toast(`Group ${g.name} created`);
        location.hash = `#/groups/${g.id}`;
      },
    }));
  render(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Groups')),
    h('section', { class: 'card' }, createBox),
    h('section', { class: 'card' }, table([
      { label: 'Name', value: (g) => h('a', { href: `#/groups/${g.id}` }, g.name) },
      { label: 'Address', value: (g) => h('span', { class: 'mono' }, g.address) },
      { label: 'Type', value: (g) => `${g.addressType}${g.sourceMode === 'ssm' ? ' (SSM)' : ''}` },
      { label: 'Service model', value: (g) => g.serviceModel },
      { label: 'Rekey', value: (g) => g.rekeyTransport === 'multicast' ? `${g.rekeyAddress}:${g.rekeyPort}` : 'unicast' },
      { label: 'State', value: (g) => h('span', { class: `badge ${g.enabled ? 'on' : 'off'}` }, g.enabled ? 'enabled' : 'disabled') },
      { label: '', class: 'actions', value: (g) => h('button', { class: 'small danger', onclick: () => deleteGroup(g) }, 'Delete') },
    ], groups, 'No groups yet. Create one above.')),
  );
}

async function deleteGroup(g) {
  if (!confirm(`Delete group ${g.name} with all its policies, PAD rules and members?`)) return;
  await api('DELETE', `/groups/${g.id}`);
  toast(`Group ${g.name} deleted`);
  if (location.hash === '#/groups') route(); else location.hash = '#/groups';
}

async function groupView(id, editPolicyId, editRuleId) {
  const [g, policies, rules, anchors, members] = await Promise.all([
    api('GET', `/groups/${id}`), api('GET', `/groups/${id}/policies`), api('GET', `/groups/${id}/pad-rules`),
    api('GET', `/groups/${id}/trust-anchors`), api('GET', `/groups/${id}/members`),
  ]);
  const reload = () => groupView(id).catch(handleError);
  const editGroup = h('details', {}, h('summary', {}, 'Edit group settings'),
    formView({
      key: 'group', fields: GROUP_FIELDS, values: g, submitLabel: 'Save group',
      onSubmit: async (body) => { await api('PATCH', `/groups/${id}`, body); toast('Group saved'); reload(); },
    }));
  const editing = policies.find((p) => p.id === editPolicyId);
  const editingRule = rules.find((r) => r.id === editRuleId);
  const policyForm = editing
    ? h('section', { class: 'card' }, h('h2', {}, `Edit policy ${editing.name}`), formView({
      key: 'policy', fields: POLICY_FIELDS, values: { ...editing, antiReplay: String(editing.antiReplay) }, submitLabel: 'Save policy',
      onSubmit: async (body) => { await api('PATCH', `/groups/${id}/policies/${editing.id}`, fixBooleans(body)); toast('Policy saved'); reload(); },
      onCancel: reload,
    }))
    : h('details', {}, h('summary', {}, 'New policy'), formView({
      key: 'policy', fields: POLICY_FIELDS, values: null, submitLabel: 'Add policy',
      onSubmit: async (body) => { await api('POST', `/groups/${id}/policies`, fixBooleans(body)); toast('Policy added'); reload(); },
    }));
  render(
    h('div', { class: 'toolbar' }, h('h1', {}, `Group ${g.name}`),
      h('button', { class: 'danger', onclick: () => deleteGroup(g) }, 'Delete group')),
    h('section', { class: 'card' },
      h('p', {}, h('span', { class: 'mono' }, g.address), ` · IPv${g.ipVersion} · ${g.addressType} · ${g.sourceMode.toUpperCase()}`,
        g.ssmSources.length ? ` from ${g.ssmSources.join(', ')}` : '', ` · ${g.serviceModel} · up to ${g.maxSpeakers} speakers · LKH degree ${g.lkhDegree} · `,
        h('span', { class: `badge ${g.enabled ? 'on' : 'off'}` }, g.enabled ? 'enabled' : 'disabled')),
      editGroup),
    h('h2', {}, 'Data policy (GSPD, first match wins)'),
    h('section', { class: 'card', id: 'policies' }, table([
      { label: '#', value: (p) => p.position },
      { label: 'Name', value: (p) => p.name },
      { label: 'Selectors', value: (p) => h('span', { class: 'mono' }, `${p.sourcePrefix} → ${p.destinationPrefix}`,
        p.protocol === null ? '' : ` proto ${p.protocol}`, p.destinationPort === null ? '' : ` port ${p.destinationPort}`) },
      { label: 'Action', value: (p) => `${p.action} · ${p.direction}` },
      { label: 'ESP', value: (p) => `${p.espTransform} · ${p.mode}${p.udpEncapsulation ? ' · UDP' : ''}${p.antiReplay ? ` · replay ${p.replayWindow}` : ''}` },
      { label: 'Lifetimes', value: (p) => `TEK ${p.tekLifetime}s · KEK ${p.kekLifetime}s · ATD ${p.atd}s · DTD ${p.dtd}s` },
      { label: '', class: 'actions', value: (p) => [
        h('button', { class: 'small', onclick: () => groupView(id, p.id).catch(handleError) }, 'Edit'), ' ',
        h('button', { class: 'small danger', onclick: async () => {
          if (!confirm(`Delete policy ${p.name}?`)) return;
          await api('DELETE', `/groups/${id}/policies/${p.id}`).catch(handleError); toast('Policy deleted'); reload();
        } }, 'Delete')] },
    ], policies, 'No policies: nothing is protected yet.'), policyForm),
    h('h2', {}, 'PAD rules'),
    h('section', { class: 'card' }, table([
      { label: 'Rule', value: (r) => r.kind === 'gcks' ? 'accept as GCKS' : 'may join' },
      { label: 'Identity', value: (r) => h('span', { class: 'mono' }, `${r.idType}: ${r.pattern}`) },
      { label: 'Role', value: (r) => r.role ?? '—' },
      { label: 'PSK', value: (r) => r.hasPsk ? 'set' : '—' },
      { label: '', class: 'actions', value: (r) => [
        h('button', { class: 'small', onclick: () => groupView(id, undefined, r.id).catch(handleError) }, 'Edit'), ' ',
        h('button', { class: 'small danger', onclick: async () => {
          await api('DELETE', `/groups/${id}/pad-rules/${r.id}`).catch(handleError); toast('Rule deleted'); reload();
        } }, 'Delete')] },
    ], rules, 'No PAD rules: nobody may join yet.'),
    editingRule
      ? h('div', { id: 'pad-edit' }, h('h2', {}, `Edit rule ${editingRule.idType}: ${editingRule.pattern}`), formView({
        key: 'pad', fields: PAD_EDIT_FIELDS, values: { ...editingRule, psk: '' }, submitLabel: 'Save rule',
        onSubmit: async (body) => { await api('PATCH', `/groups/${id}/pad-rules/${editingRule.id}`, body); toast('Rule saved'); reload(); },
        onCancel: reload,
      }))
      : h('details', {}, h('summary', {}, 'New PAD rule'), formView({
        key: 'pad', fields: PAD_FIELDS, values: null, submitLabel: 'Add rule',
        onSubmit: async (body) => { await api('POST', `/groups/${id}/pad-rules`, body); toast('Rule added'); reload(); },
      }))),
    h('h2', {}, 'Trust anchors'),
    h('section', { class: 'card' }, table([
      { label: 'Name', value: (a) => a.name },
      { label: 'Subject', value: (a) => a.subject },
      { label: 'SHA-256', value: (a) => h('span', { class: 'mono' }, a.fingerprint.slice(0, 23) + '…') },
      { label: 'Expires', value: (a) => a.notAfter.slice(0, 10) },
      { label: '', class: 'actions', value: (a) => h('button', { class: 'small danger', onclick: async () => {
        await api('DELETE', `/groups/${id}/trust-anchors/${a.id}`).catch(handleError); toast('Trust anchor removed'); reload();
      } }, 'Delete') },
    ], anchors, 'No trust anchors.'),
    h('details', {}, h('summary', {}, 'Add trust anchor'), formView({
      key: 'anchor', fields: ANCHOR_FIELDS, values: null, submitLabel: 'Add',
      onSubmit: async (body) => { await api('POST', `/groups/${id}/trust-anchors`, body); toast('Trust anchor added'); reload(); },
    }))),
    h('h2', {}, 'Members'),
    h('section', { class: 'card' }, table([
      { label: 'Identity', value: (m) => m.identity },
      { label: 'Role', value: (m) => m.role },
      { label: 'State', value: (m) => m.state },
      { label: 'Address', value: (m) => m.address ?? '—' },
      { label: 'Sender ID', value: (m) => m.senderId ?? '—' },
      { label: 'Joined', value: (m) => m.joinedAt.replace('T', ' ').slice(0, 19) },
    ], members, 'No members have registered.')),
    h('p', {}, h('a', { href: `#/audit/${id}` }, 'Audit log of this group')),
  );
}

async function auditView(groupId) {
  const entries = await api('GET', `/audit?limit=200${groupId ? `&groupId=${encodeURIComponent(groupId)}` : ''}`);
  render(h('h1', {}, groupId ? 'Audit log of one group' : 'Audit log'), h('section', { class: 'card' }, table([
    { label: 'When', value: (e) => e.at.replace('T', ' ').slice(0, 19) },
    { label: 'Who', value: (e) => h('span', {}, e.actor, e.remoteAddress ? h('span', { class: 'muted' }, ` from ${e.remoteAddress}`) : '') },
    { label: 'What', value: (e) => `${e.action} ${e.entityType}` },
    { label: 'Details', value: (e) => h('span', { class: 'mono' }, summarize(e.details)) },
  ], entries, 'Nothing recorded yet.')));
}

function summarize(details) {
  if (details.changes) return Object.entries(details.changes).map(([k, v]) => `${k}: ${JSON.stringify(v.from)} → ${JSON.stringify(v.to)}`).join('; ');
  const obj = details.after ?? details.before ?? details;
  return obj.name ? `${obj.name}${obj.address ? ` ${obj.address}` : ''}` : obj.pattern ?? obj.tokenId ?? '';
}

function handleError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  render(h('div', { class: 'error-box', role: 'alert' }, err.body?.message ?? err.message), h('p', {}, h('a', { href: '#/groups' }, 'Back to groups')));
}

async function route() {
  const hash = location.hash || '#/groups';
  if (!sessionStorage.getItem(TOKEN_KEY) || hash === '#/signin') return signInView();
  document.getElementById('nav').hidden = false;
  const parts = hash.slice(2).split('/');
  try {
    if (parts[0] === 'groups' && parts[1]) await groupView(decodeURIComponent(parts[1]));
    else if (parts[0] === 'audit') await auditView(parts[1] ? decodeURIComponent(parts[1]) : undefined);
    else await groupsView();
  } catch (err) {
    handleError(err);
  }
}

document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '#/signin';
});
window.addEventListener('hashchange', route);
route();
