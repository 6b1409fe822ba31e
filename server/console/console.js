// The agent's console (docs/console.md). No framework: the DOM, fetch and EventSource. Every
// text from the store goes into the page through textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
let me = null;        // {name, role, csrf}
let view = {};        // the person view: {party, from, to, cursor, pages, live}
const DAY = 86400e6;  // µs

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me ? me.csrf : ''},
    body: JSON.stringify(body),
  };
  const r = await fetch(path, init);
  const j = await r.json().catch(() => ({error: r.statusText}));
  if (r.status === 401 && path !== '/api/login') showLogin();
  if (!r.ok) throw Object.assign(new Error(j.error || r.statusText), {status: r.status});
  return j;
}

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
      m = Math.floor(seconds % 3600 / 60);
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  return `${m}m`;
}
const micros = (t) => Date.parse(t) * 1000;
const when = (t) => t.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
function shortThread(t) { return t.startsWith('event:') ? '#' + t.slice(-6) : t; }

// ---- login and navigation ----------------------------------------------------------------------
function show(section) {
  for (const s of ['login', 'person', 'segments', 'community-top', 'access']) $(s).hidden = s !== section;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', section.startsWith(a.dataset.view));
  }
}
function showLogin() {
  me = null;
  stopTransitions();
  $('nav').hidden = true; $('logout').hidden = true; $('who').textContent = '';
  stopLive();
  show('login');
}
async function start() {
  try {
    me = await api('/api/me');
  } catch (e) {
    return showLogin();
  }
  $('who').textContent = `${me.name} (${me.role})`;
  $('nav').hidden = false; $('logout').hidden = false;
  $('nav-access').hidden = !(me.role === 'auditor' || me.role === 'admin');
  route();
}
function route() {
  if (!me) return;
  const [, what, arg] = location.hash.split('/');
  if (what !== 'segments') stopTransitions();
  if (what === 'segments') { show('segments'); loadSegments(); startTransitions(); }
  else if (what === 'community') { show('community-top'); loadTop('value'); }
  else if (what === 'access') { show('access'); loadAccess(); }
  else {
    show('person');
    if (arg && decodeURIComponent(arg) !== view.party) openPerson(decodeURIComponent(arg));
  }
}
$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  try {
    me = await api('/api/login', {token: $('token').value});
    $('token').value = '';
    start();
  } catch (e) {
    $('login-error').textContent = e.message;
  }
});
$('logout').addEventListener('click', async () => {
  await api('/api/logout', {}).catch(() => {});
  view = {};
  showLogin();
});
window.addEventListener('hashchange', route);

// ---- finding a person ---------------------------------------------------------------------------
$('find-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('find-error').textContent = '';
  $('matches').replaceChildren();
  const q = $('find').value.trim();
  if (!q) return;
  try {
    const r = await api('/api/find?q=' + encodeURIComponent(q));
    if (r.matches.length === 0) {
      $('find-error').textContent = `nobody showed the ${r.matched} handle ${q}`;
    } else if (r.matches.length === 1) {
      location.hash = '#/person/' + encodeURIComponent(r.matches[0].stream);
    } else {
      for (const m of r.matches) {
        const a = el('a', {href: '#/person/' + encodeURIComponent(m.stream)}, m.stream);
        $('matches').append(el('li', {}, a, ` (person ${m.person}: ${m.streams.join(', ')})`));
      }
    }
  } catch (e) {
    $('find-error').textContent = e.message;
  }
});

// ---- the person's timeline ----------------------------------------------------------------------
async function openPerson(party) {
  stopLive();
  view = {party, span: 30, cursor: '', pages: 0};
  $('card').hidden = false;
  $('party-name').textContent = party;
  $('entries').replaceChildren();
  $('erase').hidden = me.role !== 'admin';
  await loadPage(true);
  loadSide();
  startLive();
}

// The range a zoom shows: the last `span` days up to the person's latest touchpoint, from their
// first at the earliest (0: all). ihsd chose `from` for the first page (`days`).
function setRange(page) {
  let last = 0;
  for (const c of page.summary.channels) last = Math.max(last, micros(c.lastAt));
  view.to = last ? last + 1 : undefined;
  view.from = view.span && page.from != null ? page.from : undefined;
}
const counted = (n, one, many) => `${n} ${n === 1 ? one : many}`;

async function loadPage(fresh) {
  const p = new URLSearchParams({party: view.party, limit: '200'});
  if (fresh) {  // ihsd sets the range from the summary it reads with the page
    view.cursor = '';
    if (view.span) p.set('days', String(view.span));
  } else if (view.from !== undefined) {
    p.set('from', String(view.from));
  }
  if (view.cursor) p.set('cursor', view.cursor);
  const t0 = performance.now();
  const page = await api('/api/timeline?' + p).catch((e) => {
    if (!fresh) throw e;
    $('find-error').textContent = e.message;
    return null;
  });
  if (!page) { $('card').hidden = true; return; }
  if (fresh) setRange(page);
  view.page = page;
  renderSummary(page);
  renderLanes(page.entries);
  renderEntries(page.entries);
  view.next = page.nextCursor || '';
  $('next-page').hidden = !view.next;
  $('range').textContent = view.from === undefined ? 'everything' :
      `${when(new Date(view.from / 1000).toISOString())} – now`;
  $('page-info').textContent = `${page.entries.length} entries on this page` +
      (view.next ? ', more later' : '');
  performance.measure('ihs-timeline-page', {start: t0, end: performance.now()});
}

function renderSummary(page) {
  const s = page.summary;
  $('person-streams').textContent = page.person.streams.length > 1 ?
      `The whole person ${page.person.id}: ${page.person.streams.join(', ')}` : '';
  const median = s.answered ? `median response ${duration(s.medianResponseSeconds)}, ` +
      `${duration(s.medianResponseServiceSeconds)} in service hours` : 'no answered message yet';
  $('summary').textContent = `${s.kind}: ${counted(s.entries, 'touchpoint', 'touchpoints')} on ` +
      `${counted(s.channels.length, 'channel', 'channels')}, ${s.open.length} open, ` +
      `${s.answered} answered (${median}), ` +
      `${counted(s.channelSwitches, 'channel switch', 'channel switches')}`;
}

async function loadSide() {
  const party = view.party;
  api('/api/community?party=' + encodeURIComponent(party)).then((c) => {
    if (view.party !== party) return;
    const open = view.page ? view.page.summary.open.length : 0;
    let text = `Community value ${c.value.toFixed(1)}` +
        (c.valueRank ? ` (rank ${c.valueRank} of ${c.valuePersons})` : '') +
        `, reach ${c.reach} over ${c.posts} posts`;
    if (open) text += `. At risk if an open message goes public: an audience of ${Math.round(c.risk)}`;
    $('community').textContent = text;
    view.risk = c.risk;
    for (const s of document.querySelectorAll('#entries .state.waiting')) markRisk(s);
  }).catch((e) => { $('community').textContent = `community: ${e.message}`; });
  api('/api/segments?party=' + encodeURIComponent(party)).then((r) => {
    if (view.party !== party) return;
    const box = $('segments-of');
    box.replaceChildren(el('strong', {}, r.segments.length ? 'Segments: ' : 'In no segment'));
    for (const m of r.segments) {
      const d = el('details', {}, el('summary', {},
          el('span', {class: 'seg'}, m.segment), ` since ${when(m.since)} (version ${m.version})`));
      if (m.why) {
        const ul = el('ul');
        for (const c of m.why.clauses) {
          ul.append(el('li', {}, `${c.holds ? 'yes' : 'no'}: ${c.clause}`,
              c.events.length ? ` — events ${c.events.map((e) => e.slice(-8)).join(', ')}` : ''));
        }
        d.append(el('p', {}, `Entered ${when(m.why.at)}: ${m.why.cause}`), ul);
      }
      box.append(d);
    }
  }).catch((e) => { $('segments-of').textContent = `segments: ${e.message}`; });
}

function renderLanes(entries) {
  const box = $('lanes');
  box.replaceChildren();
  const channels = [...new Set(entries.map((e) => e.channel))];
  const W = box.clientWidth || 1000, left = 90, right = 20, lane = 26, top = 24;
  const H = top + lane * Math.max(1, channels.length) + 10;
  box.setAttribute('viewBox', `0 0 ${W} ${H}`);
  box.setAttribute('height', String(H));
  if (!entries.length) {
    box.append(svg('text', {x: left, y: 16}, 'no touchpoints in this range'));
    return;
  }
  const t0 = view.from !== undefined ? view.from : micros(entries[0].occurredAt);
  const t1 = Math.max(view.to !== undefined ? view.to : 0, micros(entries[entries.length - 1].occurredAt));
  const x = (t) => left + (W - left - right) * (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5);
  // Ticks at the smallest whole step (6 hours, 1, 2, 7, 14, 30, 91 or 365 days) that makes at
  // most 12 of them.
  const span = (t1 - t0) / DAY;
  const step = [0.25, 1, 2, 7, 14, 30, 91].find((d) => span / d <= 12) || 365;
  const first = Math.ceil(t0 / (step * DAY)) * step * DAY;
  for (let t = first; t <= t1; t += step * DAY) {
    box.append(svg('line', {x1: x(t), x2: x(t), y1: top - 6, y2: H, class: 'grid'}));
    const d = new Date(t / 1000).toISOString();
    box.append(svg('text', {x: x(t) + 2, y: 12}, step < 1 ? d.slice(5, 16).replace('T', ' ') : d.slice(0, 10)));
  }
  channels.forEach((c, i) => {
    box.append(svg('text', {x: 4, y: top + lane * i + 16}, c));
  });
  for (const e of entries) {
    const i = channels.indexOf(e.channel);
    const cls = ['inbound', 'outbound', 'public'].includes(e.direction) ? e.direction : 'other';
    const dot = svg('circle', {cx: x(micros(e.occurredAt)), cy: top + lane * i + 12, r: 6,
      class: cls + (e.response && e.response.open ? ' open' : '')});
    dot.append(svg('title', {}, `${when(e.occurredAt)} ${e.channel} ${e.direction} ${e.type}`));
    dot.addEventListener('click', () => {
      const li = document.querySelector(`[data-event="${e.eventId}"]`);
      if (li) li.scrollIntoView({behavior: 'smooth', block: 'center'});
    });
    box.append(dot);
  }
}

function renderEntries(entries) {
  const list = $('entries');
  const fresh = new Set(view.fresh || []);
  list.replaceChildren();
  for (const e of entries) {
    const li = el('li', {class: 'entry', 'data-event': e.eventId});
    if (e.companyReply) li.classList.add('company');
    if (e.retractedBy) li.classList.add('retracted');
    if (fresh.has(e.position)) li.classList.add('fresh');
    const meta = el('div', {class: 'meta'}, el('span', {class: 'when'}, when(e.occurredAt)), ' ',
        el('span', {class: 'channel'}, e.channel), ` ${e.direction} ${e.type}`);
    if (e.thread) meta.append(el('span', {class: 'muted'}, ` thread ${shortThread(e.thread)}`));
    if (e.party && e.party !== view.party) meta.append(' ', el('span', {class: 'stream'}, e.party));
    if (e.response && e.response.open) {
      li.classList.add('open');
      const waiting = el('span', {class: 'state waiting'},
          `OPEN: waiting ${duration(e.response.waitingSeconds)}`);
      markRisk(waiting);
      meta.append(waiting);
    } else if (e.response && e.response.replyChannel) {
      const r = e.response;
      meta.append(el('span', {class: 'state'}, `answered on ${r.replyChannel} after ` +
          `${duration(r.wallSeconds)} (${duration(r.serviceSeconds)} in service hours)`));
    }
    if (e.retractedBy) meta.append(el('span', {class: 'state'}, 'retracted'));
    if (e.correctedBy) meta.append(el('span', {class: 'state'}, 'corrected'));
    li.append(meta);
    if (e.switchFrom) {
      const waited = (micros(e.occurredAt) - micros(e.switchFrom.occurredAt)) / 1e6;
      li.append(el('div', {class: 'switch'}, `↪ Channel switch from ${e.switchFrom.channel}: ` +
          `that message (${when(e.switchFrom.occurredAt)}) was unanswered, waiting ` +
          `${duration(waited)}, when this came`));
    }
    const open = el('button', {type: 'button', class: 'open-text'}, 'Open text');
    open.addEventListener('click', () => openText(e, li, open));
    li.append(open);
    list.append(li);
  }
}

// The audience at risk if this open message goes public (the person's community risk).
function markRisk(span) {
  if (view.risk === undefined || span.dataset.risk) return;
  span.dataset.risk = '1';
  span.append(`; an audience of ${Math.round(view.risk)} at risk if it goes public`);
}

async function openText(e, li, button) {
  button.disabled = true;
  try {
    const r = await api('/api/open', {eventId: e.eventId});
    const box = el('div', {class: 'content'});
    if (r.erased) box.append('(the content was erased)');
    else if (r.subject === undefined) box.append('(no content)');
    else box.append(el('strong', {class: 'subject'}, r.subject), '\n', el('span', {class: 'text'}, r.text));
    li.append(box);
    button.remove();
  } catch (err) {
    li.append(el('div', {class: 'error'}, err.message));
    button.disabled = false;
  }
}

for (const b of document.querySelectorAll('[data-zoom]')) {
  b.addEventListener('click', () => { view.span = Number(b.dataset.zoom); loadPage(true); });
}
$('next-page').addEventListener('click', () => { view.cursor = view.next; loadPage(false); });
$('first-page').addEventListener('click', () => { view.cursor = ''; loadPage(false); });
$('erase').addEventListener('click', async () => {
  const reason = prompt(`Erase the personal content of ${view.party}? Give the reason:`);
  if (!reason) return;
  try {
    await api('/api/erase', {party: view.party, reason});
    loadPage(false);
  } catch (e) {
    $('find-error').textContent = e.message;
  }
});

// ---- live: new events of the person appear without reloading -----------------------------------
function startLive() {
  const source = new EventSource('/api/live?party=' + encodeURIComponent(view.party));
  view.live = source;
  source.addEventListener('append', (ev) => {
    const d = JSON.parse(ev.data);
    view.fresh = [d.position];
    $('live').textContent = `new event at position ${d.position} on ${d.stream}`;
    if (!view.cursor) loadPage(true).then(loadSide);
  });
  source.onerror = () => { $('live').textContent = 'live updates paused'; };
  source.onopen = () => { $('live').textContent = 'live'; };
}
function stopLive() {
  if (view.live) view.live.close();
  view.live = null;
}

// ---- transitions of segments, live ---------------------------------------------------------------
let transitions = null;
function startTransitions() {
  if (transitions) return;
  transitions = new EventSource('/api/transitions');
  transitions.addEventListener('transition', (ev) => {
    const t = JSON.parse(ev.data);
    const list = $('transitions');
    if (list.firstChild && list.firstChild.classList.contains('muted')) list.replaceChildren();
    list.prepend(el('li', {class: 'transition'}, `${when(t.at)} `,
        el('a', {href: '#/person/' + encodeURIComponent(t.person)}, t.person),
        ` ${t.entered ? 'entered' : 'left'} ${t.segment} (version ${t.version}, ${t.cause})`));
    while (list.children.length > 100) list.lastChild.remove();
  });
}
function stopTransitions() {
  if (transitions) transitions.close();
  transitions = null;
}

// ---- segments, community, access ----------------------------------------------------------------
async function loadSegments() {
  const body = document.querySelector('#segment-table tbody');
  body.replaceChildren();
  const r = await api('/api/segment-list');
  for (const s of r.segments) {
    const a = el('a', {href: '#/segments'}, s.name);
    a.addEventListener('click', (ev) => { ev.preventDefault(); loadMembers(s.name, ''); });
    body.append(el('tr', {}, el('td', {}, a, el('div', {class: 'muted'}, s.description)),
        el('td', {}, String(s.members)), el('td', {}, el('code', {}, s.rule))));
  }
}
async function loadMembers(segment, after) {
  const r = await api('/api/members?' + new URLSearchParams({segment, after}));
  $('members-title').textContent = `${segment}: ${r.count} members`;
  if (!after) $('members').replaceChildren();
  for (const m of r.members) {
    $('members').append(el('li', {}, el('a', {href: '#/person/' + encodeURIComponent(m.person)},
        m.person), ` since ${when(m.since)}`));
  }
  const more = $('members-more');
  more.hidden = !r.next;
  more.onclick = () => loadMembers(segment, r.next);
}
async function loadTop(by) {
  const body = document.querySelector('#top-table tbody');
  const r = await api('/api/top?by=' + by);
  body.replaceChildren();
  r.persons.forEach((p, i) => {
    body.append(el('tr', {}, el('td', {}, String(i + 1)),
        el('td', {}, el('a', {href: '#/person/' + encodeURIComponent(p.person)}, p.person)),
        el('td', {}, p.value.toFixed(1)), el('td', {}, String(p.reach)),
        el('td', {}, String(Math.round(p.risk))), el('td', {}, String(p.posts))));
  });
}
for (const b of document.querySelectorAll('[data-by]')) {
  b.addEventListener('click', () => loadTop(b.dataset.by));
}
async function loadAccess() {
  const body = document.querySelector('#access-table tbody');
  body.replaceChildren();
  const r = await api('/api/access');
  for (const a of r.accesses) {
    body.append(el('tr', {}, el('td', {}, when(a.recordedAt)), el('td', {}, a.readBy),
        el('td', {}, a.role), el('td', {}, a.party), el('td', {}, a.events.join(' ')),
        el('td', {}, a.peer)));
  }
}

start();
