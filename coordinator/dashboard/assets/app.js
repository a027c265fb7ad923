// The dashboard's pages: jobs, one job, workers. Everything shown goes in as text (textContent,
// createTextNode), never as HTML: a counted word or a file name cannot become an element.
// Each page follows one event stream (/events): a snapshot, then what changes.
import uPlot from '/assets/uPlot.esm.js';

const main = document.getElementById('main');
const linkBanner = document.getElementById('link');

/** An element with attributes (set as properties or attributes, never as HTML) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

function formatAmount(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '';
  if (unit === 'B') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(value) >= 1024 && i < units.length - 1) {
      value /= 1024;
      i++;
    }
    return `${i === 0 ? Math.round(value) : value.toFixed(1)} ${units[i]}`;
  }
  return Math.round(value).toLocaleString('en');
}

function formatRate(value, unit) {
  if (value === null || value === undefined) return '';
  return unit === 'B' ? `${formatAmount(value, 'B')}/s` : `${formatAmount(value, '')}/s`;
}

function formatTime(iso) {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

function formatSeconds(s) {
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function tasksText(job) {
  return `${job.tasksDone}/${job.tasksTotal ?? '?'}`;
}

function progressBar(job) {
  const bar = el('progress', { max: job.tasksTotal ?? 1 });
  if (job.tasksTotal !== null) bar.value = job.tasksDone;
  return bar;
}

/** The link as last reported, and who wants to hear of a change (the job page's Cancel button). */
let currentLink = { connected: false, canCancel: false };
let onLinkChange = () => {};

/** The banner: the NATS link as the dashboard reports it, or the dashboard itself gone. */
function showLink(link) {
  currentLink = link;
  onLinkChange();
  linkBanner.className = link.connected ? 'link' : 'link down';
  linkBanner.dataset.connected = String(link.connected);
  linkBanner.textContent = link.connected ? `connected to ${link.server}` : `no connection to the NATS server (${link.server}): ${link.error ?? 'connecting'}; retrying`;
}

/** Follows /events for a view; `handlers` get the parsed events. The browser reconnects by itself. */
function follow(query, handlers) {
  const source = new EventSource(`/events?${query}`);
  source.addEventListener('error', () => {
    linkBanner.className = 'link down';
    linkBanner.dataset.connected = 'false';
    linkBanner.textContent = 'dashboard not reachable; retrying';
  });
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  }
  source.addEventListener('link', (event) => showLink(JSON.parse(event.data)));
  return source;
}

/**
 * Coalesces redraws to one per 100 ms. A timer, not requestAnimationFrame: that one stops in a
 * background tab, which would then show stale state until looked at.
 */
function scheduler(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      draw();
    }, 100);
  };
}

// ---- Jobs ------------------------------------------------------------------------------------

const MAX_ROWS = 500;

function jobsPage() {
  document.title = 'tally: jobs';
  const jobs = new Map();
  const params = new URLSearchParams(location.search);
  const statusFilter = el('select', { id: 'filter-status', 'aria-label': 'status' });
  for (const s of ['', 'running', 'done', 'failed', 'cancelled']) statusFilter.append(el('option', { value: s, text: s || 'any status' }));
  statusFilter.value = params.get('status') ?? '';
  const kindFilter = el('select', { id: 'filter-kind', 'aria-label': 'kind' });
  const body = el('tbody');
  const count = el('span', { class: 'note', id: 'jobs-count' });
  main.replaceChildren(
    el('h1', { text: 'Jobs' }),
    el('div', { class: 'filters' }, el('label', {}, 'status ', statusFilter), el('label', {}, 'kind ', kindFilter), count),
    el(
      'table',
      { id: 'jobs' },
      el('thead', {}, el('tr', {}, ...['job', 'kind', 'arguments', 'status', 'tasks', 'created', 'elapsed', 'throughput'].map((h) => el('th', { text: h })))),
      body,
    ),
  );
  let wantedKind = params.get('kind') ?? '';
  const draw = scheduler(() => {
    const kinds = [...new Set([...jobs.values()].map((j) => j.kind))].sort();
    if (wantedKind && !kinds.includes(wantedKind)) kinds.push(wantedKind);
    if (kindFilter.options.length !== kinds.length + 1) {
      kindFilter.replaceChildren(el('option', { value: '', text: 'any kind' }), ...kinds.map((k) => el('option', { value: k, text: k })));
      kindFilter.value = wantedKind;
    }
    const status = statusFilter.value;
    const shown = [...jobs.values()]
      .filter((j) => (!status || j.status === status) && (!wantedKind || j.kind === wantedKind))
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1));
    count.textContent = shown.length > MAX_ROWS ? `showing the newest ${MAX_ROWS} of ${shown.length}` : `${shown.length} job${shown.length === 1 ? '' : 's'}`;
    body.replaceChildren(
      ...shown.slice(0, MAX_ROWS).map((j) =>
        el(
          'tr',
          { 'data-job': j.id },
          el('td', {}, el('a', { href: `/jobs/${encodeURIComponent(j.id)}`, text: j.id })),
          el('td', { text: j.kind }),
          el('td', { class: 'args', text: j.argsSummary }),
          el('td', { class: `status-${j.status}`, text: j.status }),
          el('td', { class: 'num' }, progressBar(j), ' ', tasksText(j)),
          el('td', { text: formatTime(j.created) }),
          el('td', { class: 'num', text: j.elapsedMs === null ? '' : formatSeconds(j.elapsedMs / 1000) }),
          el('td', { class: 'num', text: formatRate(j.throughput, j.unit) }),
        ),
      ),
    );
  });
  const filtersChanged = () => {
    wantedKind = kindFilter.value;
    const next = new URLSearchParams();
    if (statusFilter.value) next.set('status', statusFilter.value);
    if (wantedKind) next.set('kind', wantedKind);
    history.replaceState(null, '', next.size ? `/?${next}` : '/');
    draw();
  };
  statusFilter.addEventListener('change', filtersChanged);
  kindFilter.addEventListener('change', filtersChanged);
  follow('view=jobs', {
    snapshot: (data) => {
      showLink(data.link);
      jobs.clear();
      for (const j of data.jobs) jobs.set(j.id, j);
      draw();
    },
    job: (data) => {
      jobs.set(data.job.id, data.job);
      draw();
    },
    removed: (data) => {
      jobs.delete(data.id);
      draw();
    },
  });
}

// ---- One job ---------------------------------------------------------------------------------

function jobPage(id) {
  document.title = `tally: job ${id}`;
  let job = null;
  let samples = [];
  let topAsked = false;
  let topShown = false;
  /** The job's live feed (its coordinator publishes it while it runs), or null. */
  let feed = null;
  /** Its record's dead-letter detail, once it ended (tally jobs JOB shows the same). */
  let incidents = null;
  const facts = el('dl', { class: 'facts', id: 'facts' });
  const chartBox = el('div', { id: 'chart' });
  const topBox = el('section', { id: 'top-box' });
  const liveBox = el('section', { id: 'live' });
  // Offered only while the job runs and the dashboard's credentials allow it.
  const cancelButton = el('button', { id: 'cancel', type: 'button', text: 'Cancel job' });
  cancelButton.hidden = true;
  const cancelNote = el('span', { id: 'cancel-note', class: 'note' });
  const actions = el('div', { class: 'actions' }, cancelButton, ' ', cancelNote);
  main.replaceChildren(el('h1', {}, 'Job ', el('span', { id: 'job-id', text: id })), actions, facts, chartBox, topBox, liveBox);
  const showActions = () => {
    cancelButton.hidden = !(job && job.status === 'running' && currentLink.connected && currentLink.canCancel);
  };
  onLinkChange = showActions;
  cancelButton.addEventListener('click', async () => {
    cancelButton.disabled = true;
    cancelNote.textContent = 'asking its coordinator to cancel…';
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST', headers: { 'x-tally-action': 'cancel' }, credentials: 'same-origin' });
      const data = await response.json();
      cancelNote.textContent = response.ok ? data.ok : `not cancelled: ${data.error}`;
    } catch (error) {
      cancelNote.textContent = `not cancelled: ${error.message}`;
    } finally {
      cancelButton.disabled = false;
    }
  });
  let plot = null;

  const fact = (name, key, value, cls) => [el('dt', { text: name }), el('dd', { id: key, class: cls, text: value })];
  const etaText = (j) => {
    if (j.status !== 'running') return '';
    if (!j.eta) return 'not yet: no measured rate';
    const spread = j.eta.plusMinus === null ? ' (could be much longer)' : ` ± ${formatSeconds(j.eta.plusMinus)}`;
    return `${formatSeconds(j.eta.seconds)}${spread} at ${formatRate(j.eta.rate, j.unit)} (from ${j.eta.samples} samples)`;
  };

  const drawChart = () => {
    if (samples.length === 0 || !job) return;
    const t0 = samples[0].t;
    const data = [samples.map((s) => (s.t - t0) / 1000), samples.map((s) => s.tasksDone), samples.map((s) => s.rate)];
    if (!plot) {
      plot = new uPlot(
        {
          width: Math.min(900, Math.max(320, main.clientWidth - 20)),
          height: 260,
          scales: { x: { time: false }, tasks: {}, rate: {} },
          series: [
            { label: 'seconds' },
            { label: 'tasks done', scale: 'tasks', stroke: '#2266cc', width: 2 },
            { label: job.unit === 'B' ? 'bytes/s' : 'numbers/s', scale: 'rate', stroke: '#cc6622', width: 2 },
          ],
          axes: [{ label: 'seconds since first seen' }, { scale: 'tasks', label: 'tasks done' }, { scale: 'rate', side: 1, label: job.unit === 'B' ? 'bytes/s' : 'numbers/s' }],
        },
        data,
        chartBox,
      );
    } else plot.setData(data);
  };

  const showTop = async () => {
    if (topAsked || !job || job.status !== 'done' || (job.kind !== 'count' && job.kind !== 'ngrams')) return;
    topAsked = true;
    topBox.replaceChildren(el('p', { class: 'note', text: 'reading the result…' }));
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(id)}/top?n=20`, { credentials: 'same-origin' });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error ?? `HTTP ${response.status}`);
      topShown = true;
      drawLive();
      topBox.replaceChildren(
        el('h2', { text: `Top ${data.rows.length} of ${data.uniqueWords.toLocaleString('en')} (${data.totalWords.toLocaleString('en')} in all)` }),
        el(
          'table',
          { id: 'top' },
          el('thead', {}, el('tr', {}, el('th', { class: 'num', text: '#' }), el('th', { text: data.rowName }), el('th', { class: 'num', text: 'count' }))),
          el('tbody', {}, ...data.rows.map(([word, n], i) => el('tr', {}, el('td', { class: 'num', text: i + 1 }), el('td', { class: 'word', text: word }), el('td', { class: 'num', text: n })))),
        ),
      );
    } catch (error) {
      topAsked = false;
      topBox.replaceChildren(el('p', { class: 'note', id: 'top-error', text: `the result could not be read: ${error.message}` }));
    }
  };

  const table = (id, headers, rows) =>
    el(
      'table',
      { id },
      el('thead', {}, el('tr', {}, ...headers.map(([name, cls]) => el('th', { class: cls, text: name })))),
      el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map(([text, cls]) => el('td', { class: cls, text })))))
    );

  /** The top rows while the job forms: bounds from the tasks folded so far (exact once it ends). */
  const formingTop = (preview) => {
    const covered = feed.weightTotal ? ` (${((100 * feed.weightDone) / feed.weightTotal).toFixed(1)}% of the input folded)` : ` (${formatAmount(feed.weightDone, 'B')} folded)`;
    const name = job && job.kind === 'ngrams' ? 'n-gram' : 'word';
    const exactRows = preview.rows.every(([, low, high]) => low === high);
    return [
      el('h2', { text: `Top ${name}s so far${covered}` }),
      el('p', {
        class: 'note',
        text: preview.exact
          ? 'exact counts of what was folded so far'
          : `each map task lists its most frequent ${name}s: a count is at least the listed sum and at most the upper bound; no other ${name} has more than ${preview.unlistedAtMost.toLocaleString('en')} so far. The exact table replaces this when the job ends.`,
      }),
      table(
        'forming',
        [['#', 'num'], [name], [exactRows ? 'count' : 'at least', 'num'], ...(exactRows ? [] : [['at most', 'num']])],
        preview.rows.map(([word, low, high], i) => [[i + 1, 'num'], [word, 'word'], [low, 'num'], ...(exactRows ? [] : [[high, 'num']])]),
      ),
    ];
  };

  const drawIncidents = () => {
    if (!incidents || incidents.length === 0) return [];
    const rows = [];
    for (const incident of incidents) {
      for (const [i, event] of incident.events.entries()) {
        rows.push([[i === 0 ? incident.task : '', 'num'], [i === 0 ? incident.input : ''], [i === 0 ? incident.outcomes.join(', ') : ''], [formatTime(event.at)], [event.what], [event.delivery ?? '', 'num'], [event.worker ?? ''], [event.error ?? '']]);
      }
    }
    return [
      el('h2', { text: `Tasks that did not simply succeed (${incidents.length})` }),
      table('incidents', [['task', 'num'], ['input'], ['outcome'], ['when'], ['what'], ['delivery', 'num'], ['worker'], ['error']], rows),
    ];
  };

  const drawLive = () => {
    // A job this dashboard did not see run: its record's detail, written when it ended.
    if (!feed) {
      liveBox.replaceChildren(...drawIncidents());
      return;
    }
    const parts = [];
    const preview = feed.preview;
    if (preview && Array.isArray(preview.rows) && preview.rows.length > 0 && !topShown) parts.push(...formingTop(preview));
    if (preview && typeof preview.label === 'string') parts.push(el('p', { id: 'running-value' }, `${preview.label}: `, el('strong', { text: preview.value })));
    const unit = job ? job.unit : '';
    if (feed.workers.length > 0) {
      const weight = feed.workers.reduce((sum, w) => sum + w.weight, 0);
      parts.push(
        el('h2', { text: `Workers' shares (${feed.workers.length})` }),
        table(
          'shares',
          [['worker'], ['map tasks', 'num'], [unit === 'B' ? 'bytes' : 'numbers', 'num'], ['share', 'num']],
          feed.workers.map((w) => [[w.worker], [w.tasks, 'num'], [formatAmount(w.weight, unit), 'num'], [weight > 0 ? `${((100 * w.weight) / weight).toFixed(1)}%` : '', 'num']]),
        ),
      );
    }
    if (feed.reducers.length > 0) {
      parts.push(
        el('h2', { text: `Reducers (${feed.partsDone} of ${feed.partitions} partitions done)` }),
        table('reducers', [['partition', 'num'], ['worker'], ['stage'], ['map outputs folded', 'num']], feed.reducers.map((r) => [[r.partition, 'num'], [r.worker], [r.stage], [`${r.folded}/${r.total}`, 'num']])),
      );
    }
    if (feed.failed) parts.push(el('h2', { text: 'Failed task' }), table('failed', [['task', 'num'], ['input'], ['error']], [[[feed.failed.task < 0 ? '' : feed.failed.task, 'num'], [feed.failed.input], [feed.failed.error ?? '']]]));
    if (feed.retried.count > 0) {
      parts.push(
        el('h2', { text: `Failed deliveries, retried (${feed.retried.count}${feed.retried.count > feed.retried.recent.length ? `, the last ${feed.retried.recent.length}` : ''})` }),
        table('retried', [['task', 'num'], ['input'], ['delivery', 'num'], ['worker'], ['error']], feed.retried.recent.map((e) => [[e.task, 'num'], [e.input], [e.deliveries, 'num'], [e.worker], [e.error ?? '']])),
      );
    }
    if (feed.skipped && feed.skipped.count > 0) {
      parts.push(
        el('h2', { text: `Skipped tasks, not counted (${feed.skipped.count})` }),
        table('skipped', [['task', 'num'], ['input'], ['error']], feed.skipped.recent.map((e) => [[e.task, 'num'], [e.input], [e.error ?? '']])),
      );
    }
    if (feed.backedUp && feed.backedUp.count > 0) {
      parts.push(
        el('h2', { text: `Backup tasks (${feed.backedUp.count}, ${feed.backedUp.won} of them first to finish)` }),
        table('backups', [['task', 'num'], ['input'], ['straggler'], ['why']], feed.backedUp.recent.map((e) => [[e.task, 'num'], [e.input], [e.worker || 'unknown'], [e.error ?? '']])),
      );
    }
    if (feed.redelivered.count > 0) {
      parts.push(
        el('h2', { text: `Redelivered tasks (${feed.redelivered.count}${feed.redelivered.count > feed.redelivered.recent.length ? `, the last ${feed.redelivered.recent.length}` : ''})` }),
        table('redelivered', [['task', 'num'], ['input'], ['done on delivery', 'num'], ['by worker']], feed.redelivered.recent.map((e) => [[e.task, 'num'], [e.input], [e.deliveries, 'num'], [e.worker]])),
      );
    }
    liveBox.replaceChildren(...parts);
  };

  const draw = scheduler(() => {
    showActions();
    drawLive();
    if (!job) {
      facts.replaceChildren(el('p', { class: 'note', id: 'missing', text: 'no such job in the tally-jobs bucket (yet)' }));
      return;
    }
    facts.replaceChildren(
      ...fact('kind', 'kind', job.kind),
      ...fact('arguments', 'args', job.argsSummary),
      ...fact('status', 'status', job.status, `status-${job.status}`),
      ...fact('tasks', 'tasks', tasksText(job)),
      ...fact(job.unit === 'B' ? 'bytes' : 'numbers', 'weight', `${formatAmount(job.weightDone, job.unit)} of ${job.weightTotal === null ? '?' : formatAmount(job.weightTotal, job.unit)}`),
      ...fact('created', 'created', formatTime(job.created)),
      ...fact('finished', 'finished', formatTime(job.finished)),
      ...fact('elapsed', 'elapsed', job.elapsedMs === null ? '' : formatSeconds(job.elapsedMs / 1000)),
      ...fact('throughput', 'throughput', formatRate(job.throughput, job.unit)),
      ...fact('ETA', 'eta', etaText(job)),
      ...fact('coordinator', 'coordinator', job.coordinator),
      ...(job.error ? fact('error', 'error', job.error) : []),
    );
    drawChart();
    void showTop();
  });

  follow(`view=job&job=${encodeURIComponent(id)}`, {
    snapshot: (data) => {
      showLink(data.link);
      job = data.job;
      samples = data.samples;
      feed = data.feed;
      incidents = data.incidents;
      draw();
    },
    feed: (data) => {
      feed = data;
      draw();
    },
    job: (data) => {
      job = data.job;
      if (data.incidents !== undefined) incidents = data.incidents;
      if (data.sample) samples.push(data.sample);
      draw();
    },
    removed: () => {
      job = null;
      draw();
    },
  });
}

// ---- Workers ---------------------------------------------------------------------------------

function workersPage() {
  document.title = 'tally: workers';
  const body = el('tbody');
  const count = el('p', { class: 'note', id: 'workers-count' });
  main.replaceChildren(
    el('h1', { text: 'Workers' }),
    count,
    el(
      'table',
      { id: 'workers' },
      el('thead', {}, el('tr', {}, ...['worker', 'host', 'pid', 'state', 'tasks done', 'tasks/s (30 s)', 'failed', 'started', 'last seen'].map((h) => el('th', { text: h })))),
      body,
    ),
  );
  const show = (workers) => {
    const alive = workers.filter((w) => !w.gone).length;
    count.textContent = `${alive} alive${workers.length > alive ? `, ${workers.length - alive} gone` : ''}`;
    body.replaceChildren(
      ...workers.map((w) =>
        el(
          'tr',
          { class: w.gone ? 'gone' : '', 'data-pid': w.pid, 'data-host': w.host },
          el('td', { text: w.name }),
          el('td', { text: w.host }),
          el('td', { class: 'num', text: w.pid }),
          el('td', { class: 'state', text: w.gone ? 'gone' : w.busy ? `busy ${w.current ?? ''}`.trim() : 'idle' }),
          el('td', { class: 'num', text: w.tasksDone }),
          el('td', { class: 'num rate', text: w.recentTasksPerSecond === null ? '' : w.recentTasksPerSecond.toFixed(1) }),
          el('td', { class: 'num', text: w.tasksFailed }),
          el('td', { text: formatTime(w.started) }),
          el('td', { text: formatTime(w.lastSeen) }),
        ),
      ),
    );
  };
  follow('view=workers', {
    snapshot: (data) => {
      showLink(data.link);
      show(data.workers);
    },
    workers: show,
  });
}

const path = location.pathname;
const jobMatch = /^\/jobs\/([a-z0-9-]+)$/.exec(path);
if (jobMatch) jobPage(jobMatch[1]);
else if (path === '/workers') workersPage();
else jobsPage();
