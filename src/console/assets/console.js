// Boltcall operator console: a plain script over the /v1 API, no build step.
// The API key lives in sessionStorage only (gone when the tab closes) and is sent as a bearer
// token; every value from the API reaches the page through textContent, never as HTML.
'use strict';

const KEY_STORAGE = 'boltcall.key';
const view = () => document.getElementById('main');
let voices = null;
let signedIn = false;

// ---- DOM helpers ----

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(...nodes) {
  const main = view();
  main.replaceChildren(...nodes);
  main.focus({ preventScroll: true });
}

function say(message, isError) {
  const status = document.getElementById('status');
  status.textContent = message || '';
  status.className = isError ? 'error' : '';
}

function badge(value) {
  return value ? h('span', { class: 'badge ' + value }, value) : h('span', { class: 'muted' }, '—');
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : '—';
}

function seconds(ms) {
  return (ms / 1000).toFixed(1) + ' s';
}

// ---- API ----

class ApiError extends Error {}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers = { Authorization: 'Bearer ' + key };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method || 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    signOut('That key was refused. Sign in with a valid API key.');
    throw new ApiError('unauthorized');
  }
  if (options.raw) {
    if (!response.ok) throw new ApiError('HTTP ' + response.status);
    return response;
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = body && body.error;
    const field = error && error.field ? ' (' + error.field + ')' : '';
    throw new ApiError((error && error.message ? error.message : 'HTTP ' + response.status) + field);
  }
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? '?' + text : '';
}

// ---- sign-in ----

function takeKeyFromAddress() {
  // `/console#key=sk_…` (printed by `boltcall console`) signs in at once; the key then leaves
  // the address bar and the history entry so it is not shared or bookmarked by accident.
  const match = location.hash.match(/^#key=([A-Za-z0-9_]+)$/);
  if (!match) return false;
  sessionStorage.setItem(KEY_STORAGE, match[1]);
  history.replaceState(null, '', location.pathname + '#/overview');
  return true;
}

function signOut(message) {
  signedIn = false;
  sessionStorage.removeItem(KEY_STORAGE);
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  document.getElementById('who').textContent = '';
  renderSignIn(message);
}

function renderSignIn(message) {
  const input = h('input', { id: 'api-key', type: 'password', autocomplete: 'off', required: true, placeholder: 'sk_test_…' });
  const form = h('form', { class: 'card signin', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Use an API key of your workspace. It is kept in this tab only.'),
    h('label', { for: 'api-key' }, 'API key'), input,
    h('p', {}, h('button', { type: 'submit' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    if (await checkKey()) route();
  });
  say(message, Boolean(message));
  show(form);
  input.focus();
}

async function checkKey() {
  try {
    await api('/v1/agents?limit=1');
  } catch (e) {
    if (!(e instanceof ApiError) || e.message !== 'unauthorized') say(e.message, true);
    return false;
  }
  signedIn = true;
  const key = sessionStorage.getItem(KEY_STORAGE) || '';
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = false;
  document.getElementById('who').textContent = key.startsWith('sk_live') ? 'live mode' : 'test mode';
  return true;
}

// ---- routing ----

const routes = [
  [/^#\/overview$/, renderOverview],
  [/^#\/agents$/, renderAgents],
  [/^#\/agents\/new$/, () => renderAgentForm(null)],
  [/^#\/agents\/([\w-]+)$/, (id) => renderAgentForm(id)],
  [/^#\/calls(?:\?(.*))?$/, (q) => renderCalls(new URLSearchParams(q || ''))],
  [/^#\/calls\/([\w-]+)$/, renderCall],
  [/^#\/leads$/, () => renderList('Leads', '/v1/leads', ['name', 'phone', 'email', 'status', 'score', 'source', 'created_at'])],
  [/^#\/appointments$/, () => renderList('Appointments', '/v1/appointments', ['title', 'start_time', 'end_time', 'status', 'lead_id', 'agent_id'])],
  [/^#\/messages$/, () => renderList('Messages', '/v1/messages', ['channel', 'direction', 'to', 'body', 'status', 'error_message', 'sent_at'])],
  [/^#\/webhooks$/, renderWebhooks],
  [/^#\/webhooks\/([\w-]+)$/, renderDeliveries],
];

async function route() {
  if (talk) await endTalk(null);
  if (!sessionStorage.getItem(KEY_STORAGE)) return renderSignIn();
  const hash = location.hash || '#/overview';
  for (const link of document.querySelectorAll('#nav a')) {
    const current = hash === link.getAttribute('href') || hash.startsWith(link.getAttribute('href') + '/') || hash.startsWith(link.getAttribute('href') + '?');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  for (const [pattern, render] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    say('Loading…');
    try {
      await render(...match.slice(1));
      say('');
    } catch (e) {
      if (!(e instanceof ApiError && e.message === 'unauthorized')) say(e.message, true);
    }
    return;
  }
  location.hash = '#/overview';
}

// ---- overview ----

async function renderOverview() {
  const to = new Date();
  const from = new Date(to.getTime() - 13 * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  const overview = await api('/v1/analytics/overview' + query({ from: day(from), to: day(to) }));
  const calls = await fetchAll('/v1/calls' + query({ from: day(from), to: day(to) }), 5);
  const stat = (label, value) => h('div', { class: 'stat' }, h('b', {}, value), label);
  const canvas = h('canvas', { width: 1000, height: 220, role: 'img', 'aria-label': 'Calls per day over the last 14 days' });
  show(
    h('h1', {}, 'Overview'),
    h('p', { class: 'muted' }, `${overview.period.from} to ${overview.period.to}`),
    h('div', { class: 'stats' },
      stat('calls', overview.calls.total),
      stat('answered', overview.calls.answered),
      stat('missed', overview.calls.missed),
      stat('leads captured', overview.leads.captured),
      stat('appointments booked', overview.appointments.booked),
      stat('messages sent', overview.messages.sent),
      stat('avg response', overview.avg_response_time_seconds.toFixed(2) + ' s')),
    h('div', { class: 'card' }, h('h2', {}, 'Calls per day'),
      h('p', { class: 'legend' }, h('span', {}, h('i', { class: 'answered' }), 'answered'),
        h('span', {}, h('i', { class: 'missed' }), 'missed or failed')),
      canvas));
  const days = [];
  for (let t = from.getTime(); t <= to.getTime() + 1; t += 86400000) days.push(day(new Date(t)));
  const answered = Object.fromEntries(days.map((d) => [d, 0]));
  const missed = Object.fromEntries(days.map((d) => [d, 0]));
  for (const call of calls) {
    const d = call.created_at.slice(0, 10);
    if (!(d in answered)) continue;
    if (call.status === 'completed' || call.status === 'in-progress') answered[d] += 1;
    else if (call.status !== 'ringing') missed[d] += 1;
  }
  drawBars(canvas, days, answered, missed);
}

async function fetchAll(path, maxPages) {
  const items = [];
  const separator = path.includes('?') ? '&' : '?';
  for (let page = 1; page <= maxPages; page++) {
    const body = await api(`${path}${separator}limit=100&page=${page}`);
    items.push(...body.data);
    if (items.length >= body.meta.total) break;
  }
  return items;
}

function drawBars(canvas, days, answered, missed) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const top = Math.max(1, ...days.map((d) => answered[d] + missed[d]));
  const slot = width / days.length;
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#5b6673';
  ctx.fillText(String(top), 2, 12);
  days.forEach((d, i) => {
    const x = i * slot + slot * 0.2;
    const w = slot * 0.6;
    const scale = (height - 40) / top;
    const a = answered[d] * scale;
    const m = missed[d] * scale;
    ctx.fillStyle = '#0b63c5';
    ctx.fillRect(x, height - 24 - a, w, a);
    ctx.fillStyle = '#b3261e';
    ctx.fillRect(x, height - 24 - a - m, w, m);
    ctx.fillStyle = '#5b6673';
    ctx.fillText(d.slice(5), x, height - 8);
  });
}

// ---- agents ----

async function renderAgents() {
  const agents = (await api('/v1/agents?limit=100')).data;
  const rows = agents.map((a) => clickableRow('#/agents/' + a.id,
    h('td', {}, a.name), h('td', {}, a.phone_number || '—'), h('td', {}, a.voice_id), h('td', {}, badge(a.status)),
    h('td', {}, h('a', { href: '#/calls?agent_id=' + a.id, onclick: (e) => e.stopPropagation() }, 'calls'))));
  show(
    h('h1', {}, 'Agents'),
    h('p', {}, h('a', { class: 'button', href: '#/agents/new' }, 'New agent')),
    agents.length
      ? table(['Name', 'Number', 'Voice', 'Status', ''], rows, 'agents')
      : h('p', { class: 'muted' }, 'No agents yet.'));
}

function clickableRow(href, ...cells) {
  const open = () => { location.hash = href; };
  return h('tr', { class: 'link', tabindex: 0, onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } }, ...cells);
}

function table(headings, rows, id) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows));
}

async function renderAgentForm(id) {
  const agent = id ? await api('/v1/agents/' + id) : null;
  voices = voices || (await api('/v1/voices')).data;
  const bases = (await api('/v1/knowledge_bases?limit=100')).data;
  const field = (name, label, input) => [h('label', { for: 'agent-' + name }, label), input];
  const text = (name, value, attrs) => h('input', { id: 'agent-' + name, name, value: value || '', ...attrs });
  const area = (name, value) => {
    const node = h('textarea', { id: 'agent-' + name, name });
    node.value = value || '';
    return node;
  };
  const select = (name, options, selected) => h('select', { id: 'agent-' + name, name },
    options.map(([value, label]) => h('option', { value, selected: value === (selected || '') }, label)));
  const form = h('form', { class: 'card', id: 'agent-form' },
    field('name', 'Name', text('name', agent && agent.name, { required: true })),
    field('greeting', 'Greeting (the first thing the agent says)', area('greeting', agent && agent.greeting)),
    field('prompt', 'Prompt', area('prompt', agent && agent.prompt)),
    h('div', { class: 'row' },
      h('div', {}, field('voice_id', 'Voice', select('voice_id', voices.map((v) => [v.id, `${v.name} (${v.gender}, ${v.accent})`]), agent ? agent.voice_id : 'voice_sarah'))),
      h('div', {}, field('knowledge_base_id', 'Knowledge base', select('knowledge_base_id', [['', 'None'], ...bases.map((b) => [b.id, b.name])], agent && agent.knowledge_base_id))),
      h('div', {}, field('phone_number', 'Phone number (E.164)', text('phone_number', agent && agent.phone_number, { placeholder: '+14155550100' }))),
      h('div', {}, field('status', 'Status', select('status', [['active', 'active'], ['paused', 'paused']], agent ? agent.status : 'active')))),
    h('p', { class: 'row' }, h('span', {}, h('button', { type: 'submit' }, agent ? 'Save' : 'Create agent'))));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = {
      name: data.name,
      greeting: data.greeting || null,
      prompt: data.prompt || null,
      voice_id: data.voice_id,
      knowledge_base_id: data.knowledge_base_id || null,
      phone_number: data.phone_number || null,
      status: data.status,
    };
    try {
      const saved = agent
        ? await api('/v1/agents/' + agent.id, { method: 'PATCH', body })
        : await api('/v1/agents', { method: 'POST', body });
      say(agent ? 'Saved.' : 'Agent created.');
      if (!agent) location.hash = '#/agents/' + saved.id;
    } catch (e) {
      say(e.message, true);
    }
  });
  const knowledge = knowledgeForm(async (created) => {
    bases.push(created);
    const select = form.querySelector('#agent-knowledge_base_id');
    select.append(h('option', { value: created.id }, created.name));
    select.value = created.id;
    say(`Knowledge base “${created.name}” created; save the agent to use it.`);
  });
  show(h('h1', {}, agent ? agent.name : 'New agent'), agent ? talkPanel(agent) : '', form, knowledge);
}

// ---- talking to an agent (WebRTC) ----

// The one browser call of this tab: { pc, mic, location, callId, ended }.
let talk = null;

function talkPanel(agent) {
  const state = h('p', { id: 'talk-state', class: 'muted' },
    'Talk to this agent with your microphone. The call is recorded like any other.');
  const start = h('button', { type: 'button', id: 'talk' }, 'Talk to this agent');
  const stop = h('button', { type: 'button', id: 'hang-up', class: 'secondary', hidden: true }, 'Hang up');
  const captions = h('ol', { class: 'turns captions', id: 'captions', 'aria-live': 'polite', 'aria-label': 'Live captions' });
  const voice = h('audio', { id: 'talk-audio', autoplay: true });
  const panel = h('section', { class: 'card talk', 'aria-labelledby': 'talk-title' },
    h('h2', { id: 'talk-title' }, 'Talk'), state, h('p', { class: 'row' }, h('span', {}, start, ' ', stop)), captions, voice);
  const ui = { state, start, stop, captions, voice };
  start.addEventListener('click', () => startTalk(agent, ui).catch((e) => endTalk(ui, e.message)));
  stop.addEventListener('click', () => endTalk(ui));
  return panel;
}

// Waits until the browser has gathered its candidates: the offer goes out complete (the
// engine does not take trickled candidates).
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 3000);
  });
}

async function startTalk(agent, ui) {
  if (talk) await endTalk(null);
  ui.start.disabled = true;
  ui.captions.replaceChildren();
  ui.state.textContent = 'Asking for the microphone…';
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  talk = { pc, mic, location: null, callId: null, ended: false, ui };
  for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
  const channel = pc.createDataChannel('captions');
  channel.addEventListener('message', (event) => showCaption(ui.captions, JSON.parse(event.data)));
  pc.addEventListener('track', (event) => {
    ui.voice.srcObject = event.streams[0] || new MediaStream([event.track]);
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected') ui.state.textContent = 'Connected: speak now.';
    if (['failed', 'closed', 'disconnected'].includes(pc.connectionState)) endTalk(ui);
  });
  // The engine closes the call's data channel when the call ends (the agent hung up).
  channel.addEventListener('close', () => endTalk(ui));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  ui.state.textContent = 'Calling…';
  const response = await fetch('/v1/agents/' + agent.id + '/web-calls', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + sessionStorage.getItem(KEY_STORAGE), 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(body && body.error ? body.error.message : 'HTTP ' + response.status);
  }
  talk.location = response.headers.get('Location');
  talk.callId = response.headers.get('X-Call-Id');
  ui.voice.dataset.callId = talk.callId;
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  ui.stop.hidden = false;
}

// One caption event: the caller's partial words are replaced until their final; each agent
// sentence is a line of its own, joined to the agent's line while it keeps talking.
function showCaption(list, caption) {
  const last = list.lastElementChild;
  const open = last && last.classList.contains(caption.speaker) && last.dataset.open === 'true';
  let item = open ? last : null;
  if (!item) {
    item = h('li', { class: 'caption ' + caption.speaker, 'data-open': 'true' },
      h('div', { class: 'meta' }, caption.speaker === 'agent' ? 'agent' : 'you'), h('span', { class: 'words' }));
    if (last) last.dataset.open = 'false';
    list.append(item);
  }
  const words = item.querySelector('.words');
  words.textContent = (item.dataset.said ? item.dataset.said + ' ' : '') + caption.text;
  if (caption.final) item.dataset.said = words.textContent;
  item.classList.toggle('partial', !caption.final);
}

// Ends this tab's call: tells the engine (unless the call is over already), closes the
// connection and the microphone, then links to the call's record.
async function endTalk(ui, message) {
  const ending = talk;
  if (ending && !ending.ended) {
    ending.ended = true;
    talk = null;
    if (ending.location) {
      fetch(ending.location, { method: 'DELETE', headers: { Authorization: 'Bearer ' + sessionStorage.getItem(KEY_STORAGE) } })
        .catch(() => {});
    }
    ending.pc.close();
    for (const track of ending.mic.getTracks()) track.stop();
    ui = ui || ending.ui;
  }
  if (!ui) return;
  ui.start.disabled = false;
  ui.stop.hidden = true;
  if (message) {
    ui.state.textContent = '';
    say(message, true);
  } else if (ending && ending.callId) {
    ui.state.replaceChildren('Call ended. ', h('a', { href: '#/calls/' + ending.callId, id: 'talk-call' }, 'Open the call'),
      ' for its transcript and recording (ready once the call is written up).');
  }
}


function knowledgeForm(onCreated) {
  const name = h('input', { id: 'kb-name', required: true });
  const title = h('input', { id: 'kb-title', required: true });
  const body = h('textarea', { id: 'kb-text', required: true });
  const form = h('form', { class: 'card' },
    h('h2', {}, 'New knowledge base'),
    h('label', { for: 'kb-name' }, 'Name'), name,
    h('label', { for: 'kb-title' }, 'Document title'), title,
    h('label', { for: 'kb-text' }, 'Document text (what the agent may answer from)'), body,
    h('p', {}, h('button', { type: 'submit', class: 'secondary' }, 'Create knowledge base')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const base = await api('/v1/knowledge_bases', { method: 'POST', body: { name: name.value } });
      await api(`/v1/knowledge_bases/${base.id}/documents`, { method: 'POST', body: { title: title.value, text: body.value } });
      form.reset();
      await onCreated(base);
    } catch (e) {
      say(e.message, true);
    }
  });
  return form;
}

// ---- calls ----

async function renderCalls(params) {
  const filters = { agent_id: params.get('agent_id'), direction: params.get('direction'), from: params.get('from'), to: params.get('to') };
  const page = Number(params.get('page') || 1);
  const [agents, calls] = await Promise.all([
    api('/v1/agents?limit=100'),
    api('/v1/calls' + query({ ...filters, page, limit: 25 })),
  ]);
  const names = Object.fromEntries(agents.data.map((a) => [a.id, a.name]));
  const form = h('form', { class: 'card row', id: 'call-filters' },
    h('div', {}, h('label', { for: 'f-agent' }, 'Agent'), h('select', { id: 'f-agent', name: 'agent_id' },
      h('option', { value: '' }, 'All'), agents.data.map((a) => h('option', { value: a.id, selected: a.id === filters.agent_id }, a.name)))),
    h('div', {}, h('label', { for: 'f-direction' }, 'Direction'), h('select', { id: 'f-direction', name: 'direction' },
      ['', 'inbound', 'outbound'].map((d) => h('option', { value: d, selected: d === (filters.direction || '') }, d || 'Both')))),
    h('div', {}, h('label', { for: 'f-from' }, 'From'), h('input', { id: 'f-from', name: 'from', type: 'date', value: filters.from || '' })),
    h('div', {}, h('label', { for: 'f-to' }, 'To'), h('input', { id: 'f-to', name: 'to', type: 'date', value: filters.to || '' })),
    h('div', {}, h('button', { type: 'submit' }, 'Filter')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = '#/calls' + query(Object.fromEntries(new FormData(form)));
  });
  const rows = calls.data.map((c) => clickableRow('#/calls/' + c.id,
    h('td', {}, when(c.created_at)), h('td', {}, names[c.agent_id] || c.agent_id), h('td', {}, c.direction),
    h('td', {}, c.direction === 'inbound' ? c.caller : c.to), h('td', {}, badge(c.status)),
    h('td', {}, c.duration_seconds === null ? '—' : c.duration_seconds + ' s'), h('td', {}, badge(c.sentiment))));
  const pages = Math.max(1, Math.ceil(calls.meta.total / calls.meta.limit));
  const pageLink = (n, label) => h('a', { href: '#/calls' + query({ ...filters, page: n }) }, label);
  show(
    h('h1', {}, 'Calls'), form,
    calls.data.length ? table(['Started', 'Agent', 'Direction', 'Other party', 'Status', 'Duration', 'Sentiment'], rows, 'calls') : h('p', { class: 'muted' }, 'No calls match.'),
    h('p', { class: 'muted' }, page > 1 ? pageLink(page - 1, '← newer') : '', ` page ${page} of ${pages} (${calls.meta.total} calls) `, page < pages ? pageLink(page + 1, 'older →') : ''));
}

async function renderCall(id) {
  const call = await api('/v1/calls/' + id);
  const facts = [
    ['Direction', call.direction], ['From', call.caller], ['To', call.to], ['Status', badge(call.status)],
    ['Started', when(call.created_at)], ['Ended', when(call.ended_at)],
    ['Duration', call.duration_seconds === null ? '—' : call.duration_seconds + ' s'], ['End reason', call.end_reason || '—'],
    ['Sentiment', badge(call.sentiment)], ['Answered by', call.answered_by || '—'], ['Transferred to', call.transferred_to || '—'],
  ];
  const latency = call.latency || {};
  const turns = (latency.turns || []);
  const transcript = h('ol', { class: 'turns', id: 'transcript' });
  const player = h('div', { id: 'player' });
  show(
    h('h1', {}, 'Call ' + call.id),
    h('div', { class: 'card' }, h('table', {}, h('tbody', {}, facts.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))))),
    call.summary ? h('div', { class: 'card' }, h('h2', {}, 'Summary'), h('p', { id: 'summary' }, call.summary),
      call.tags.length ? h('p', {}, call.tags.map((t) => [badge(t), ' '])) : '',
      call.outcome ? h('p', {}, 'Outcome: ', badge(call.outcome.result), call.outcome.follow_up ? ' — ' + call.outcome.follow_up : '') : '') : '',
    h('div', { class: 'card' }, h('h2', {}, 'Recording'), player),
    h('div', { class: 'card' }, h('h2', {}, 'Transcript'), transcript),
    turns.length ? h('div', { class: 'card' }, h('h2', {}, 'Latency per turn'),
      table(['Turn', 'Endpointing', 'STT final', 'First token', 'TTS first audio', 'Voice to voice', 'Interrupted'],
        turns.map((t) => h('tr', {}, h('td', {}, t.turn), ...['endpointing_ms', 'stt_final_ms', 'first_token_ms', 'tts_first_audio_ms', 'voice_to_voice_ms']
          .map((k) => h('td', {}, t[k] === null || t[k] === undefined ? '—' : t[k] + ' ms')), h('td', {}, t.interrupted ? 'yes' : ''))), 'latency')) : '',
    toolCalls(call.tool_calls || []),
    call.provider_failures.length ? h('div', { class: 'card' }, h('h2', {}, 'Provider failures'),
      table(['At', 'Provider', 'Error', 'Caller heard instead'], call.provider_failures.map((f) => h('tr', {},
        h('td', {}, seconds(f.at_ms)), h('td', {}, f.provider), h('td', {}, f.error), h('td', {}, f.heard_instead))))) : '');
  const seekers = [];
  for (const entry of call.transcript) {
    const item = h('li', { class: entry.role, tabindex: 0, 'data-start-ms': entry.start_ms },
      h('div', { class: 'meta' }, `${entry.role} · ${seconds(entry.start_ms)}${entry.interrupted ? ' · interrupted' : ''}`),
      entry.text);
    seekers.push([entry, item]);
    transcript.append(item);
  }
  if (!call.transcript.length) transcript.append(h('li', { class: 'muted' }, 'Nothing was said.'));
  if (call.recording_url) await loadRecording(call, player, seekers);
  else player.append(h('p', { class: 'muted' }, 'No recording for this call.'));
}

function toolCalls(calls) {
  if (!calls.length) return '';
  return h('div', { class: 'card' }, h('h2', {}, 'Tool calls'),
    calls.map((c) => h('div', {}, h('b', {}, c.name), h('pre', {}, JSON.stringify({ arguments: c.arguments, result: c.result }, null, 2)))));
}

async function loadRecording(call, player, seekers) {
  const response = await api(`/v1/calls/${call.id}/recording`, { raw: true });
  const blob = await response.blob();
  const audio = h('audio', { controls: true, id: 'recording', src: URL.createObjectURL(blob), preload: 'auto' });
  const canvas = h('canvas', { class: 'wave', width: 1100, height: 120, role: 'img', 'aria-label': 'Waveform: caller above, agent below. Click to play from there.' });
  player.append(
    h('p', { class: 'legend' }, h('span', {}, h('i', { class: 'caller' }), 'caller (left)'),
      h('span', {}, h('i', { class: 'agent' }), 'agent (right)')),
    canvas, audio);
  let buffer = null;
  try {
    const context = new (window.AudioContext || window.webkitAudioContext)();
    buffer = await context.decodeAudioData(await blob.arrayBuffer());
    context.close();
    drawWave(canvas, buffer);
    canvas.dataset.channels = String(buffer.numberOfChannels);
  } catch (e) {
    canvas.replaceWith(h('p', { class: 'muted' }, 'This browser cannot draw the waveform: ' + e.message));
  }
  const seek = (ms) => {
    audio.currentTime = ms / 1000;
    audio.play().catch(() => {});
  };
  canvas.addEventListener('click', (event) => {
    if (!buffer) return;
    const rect = canvas.getBoundingClientRect();
    seek(((event.clientX - rect.left) / rect.width) * buffer.duration * 1000);
  });
  for (const [entry, item] of seekers) {
    item.addEventListener('click', () => seek(entry.start_ms));
    item.addEventListener('keydown', (event) => { if (event.key === 'Enter') seek(entry.start_ms); });
  }
  audio.addEventListener('timeupdate', () => {
    const now = audio.currentTime * 1000;
    for (const [entry, item] of seekers) item.classList.toggle('playing', now >= entry.start_ms && now <= Math.max(entry.end_ms, entry.start_ms + 500));
    if (buffer) drawWave(canvas, buffer, audio.currentTime / buffer.duration);
  });
}

function drawWave(canvas, buffer, played) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const lanes = Math.min(2, buffer.numberOfChannels);
  const colours = ['#0b63c5', '#8a4baf'];
  for (let lane = 0; lane < lanes; lane++) {
    const data = buffer.getChannelData(lane);
    const mid = (height / lanes) * (lane + 0.5);
    const half = height / lanes / 2 - 2;
    const step = Math.max(1, Math.floor(data.length / width));
    ctx.fillStyle = colours[lane];
    for (let x = 0; x < width; x++) {
      let peak = 0;
      const start = x * step;
      for (let i = start; i < start + step && i < data.length; i++) peak = Math.max(peak, Math.abs(data[i]));
      const bar = Math.max(1, peak * half);
      ctx.fillRect(x, mid - bar, 1, bar * 2);
    }
  }
  if (played !== undefined) {
    ctx.fillStyle = 'rgba(19, 32, 46, 0.12)';
    ctx.fillRect(0, 0, width * played, height);
  }
}

// ---- leads, appointments, messages ----

async function renderList(title, path, columns) {
  const items = (await api(path + '?limit=100')).data;
  const cell = (item, column) => {
    const value = item[column];
    if (column === 'status') return badge(value);
    if (column.endsWith('_at') || column.endsWith('_time')) return when(value);
    if (Array.isArray(value)) return value.join(', ');
    return value === null || value === undefined ? '—' : String(value);
  };
  show(h('h1', {}, title),
    items.length
      ? table(columns.map((c) => c.replace(/_/g, ' ')), items.map((item) => h('tr', {}, columns.map((c) => h('td', {}, cell(item, c))))), title.toLowerCase())
      : h('p', { class: 'muted' }, `No ${title.toLowerCase()} yet.`));
}

// ---- webhooks ----

async function renderWebhooks() {
  const hooks = (await api('/v1/webhooks?limit=100')).data;
  const url = h('input', { id: 'wh-url', type: 'url', required: true, placeholder: 'https://yourapp.com/hooks/boltcall' });
  const events = h('input', { id: 'wh-events', value: 'call.completed, lead.created, appointment.booked' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'New webhook'),
    h('label', { for: 'wh-url' }, 'URL'), url,
    h('label', { for: 'wh-events' }, 'Events (comma-separated)'), events,
    h('p', {}, h('button', { type: 'submit' }, 'Add webhook')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('/v1/webhooks', { method: 'POST', body: { url: url.value, events: events.value.split(',').map((e) => e.trim()).filter(Boolean) } });
      await route();
      say(`Webhook created. Its signing secret (shown once): ${created.secret}`);
    } catch (e) {
      say(e.message, true);
    }
  });
  show(h('h1', {}, 'Webhooks'),
    hooks.length
      ? table(['URL', 'Events', 'Status', 'Created'], hooks.map((w) => clickableRow('#/webhooks/' + w.id,
        h('td', {}, w.url), h('td', {}, w.events.join(', ')), h('td', {}, badge(w.status), w.disabled_reason ? ' ' + w.disabled_reason : ''), h('td', {}, when(w.created_at)))), 'webhooks')
      : h('p', { class: 'muted' }, 'No webhooks yet.'),
    form);
}

async function renderDeliveries(id) {
  const deliveries = (await api(`/v1/webhooks/${id}/deliveries?limit=100`)).data;
  const columns = deliveries.length ? Object.keys(deliveries[0]).filter((k) => typeof deliveries[0][k] !== 'object' || deliveries[0][k] === null) : [];
  const test = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    try {
      await api(`/v1/webhooks/${id}/test`, { method: 'POST', body: {} });
      await route();
      say('Test event queued.');
    } catch (e) {
      say(e.message, true);
    }
  } }, 'Send a test event');
  show(h('h1', {}, 'Deliveries of ' + id), h('p', {}, test),
    deliveries.length
      ? table(columns.map((c) => c.replace(/_/g, ' ')), deliveries.map((d) => h('tr', {}, columns.map((c) => h('td', {}, c.endsWith('_at') ? when(d[c]) : d[c] === null ? '—' : String(d[c]))))), 'deliveries')
      : h('p', { class: 'muted' }, 'Nothing delivered yet.'));
}

// ---- start ----

// Every address change: a `#key=` link signs in afresh (also in an open tab), anything else
// is a page of the console.
async function navigate() {
  if (takeKeyFromAddress()) signedIn = false;
  if (!sessionStorage.getItem(KEY_STORAGE)) return renderSignIn();
  if (signedIn || (await checkKey())) route();
}

window.addEventListener('hashchange', navigate);
// A closed or reloaded tab hangs up at once (the engine would notice within seconds anyway).
window.addEventListener('pagehide', () => {
  if (talk && talk.location) {
    fetch(talk.location, { method: 'DELETE', keepalive: true, headers: { Authorization: 'Bearer ' + sessionStorage.getItem(KEY_STORAGE) } });
  }
});
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  navigate();
});
