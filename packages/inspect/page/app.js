// x-inspect's page: plain JavaScript, no build step. Every value from Redis is rendered with
// textContent (el() below never parses markup), so a resource named `<img src=x onerror=...>`
// shows as that text.
'use strict';

(function () {
  var POLL_MS = 1000;
  var TITLES = {
    lock: 'Locks', semaphore: 'Semaphores', event: 'Events', quota: 'Quotas',
    idempotency: 'Idempotency keys', leasedkeyq: 'Queues (leasedkeyq)', streams: 'Streams',
  };
  var last = null;

  /** An element with text children only: strings become text nodes, never markup. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, String(attrs[k]));
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function sub(text) { return el('span', { class: 'sub' }, text); }

  /** "in 12 s", "3 min ago", counted from the server's clock. */
  function rel(t, now) {
    if (t === null || t === undefined) return '—';
    var d = t - now, a = Math.abs(d), s;
    if (a < 1000) return 'now';
    if (a < 60000) s = Math.round(a / 1000) + ' s';
    else if (a < 3600000) s = Math.round(a / 60000) + ' min';
    else if (a < 86400000) s = Math.round(a / 3600000) + ' h';
    else s = Math.round(a / 86400000) + ' d';
    return d > 0 ? 'in ' + s : s + ' ago';
  }
  function short(token) { token = String(token); return token.length > 12 ? token.slice(0, 8) + '…' : token; }

  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    return node;
  }
  /** A small line chart of one or two series ([[t, v], ...]) over the same time axis. */
  function chart(series, labels, now) {
    var W = 140, H = 34, P = 2;
    var all = [].concat.apply([], series.filter(Boolean));
    var wrap = el('div', { class: 'chart-wrap' });
    if (all.length === 0) return wrap;
    var t0 = Math.min.apply(null, all.map(function (p) { return p[0]; }));
    var t1 = Math.max(now, t0 + 1);
    var vmax = Math.max(1, Math.max.apply(null, all.map(function (p) { return p[1]; })));
    var box = svg('svg', { class: 'chart', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    var title = svg('title', {});
    title.textContent = labels.map(function (l, i) { var s = series[i]; return l + ' ' + (s && s.length ? s[s.length - 1][1] : '—'); }).join(', ') + ' (max ' + vmax + ')';
    box.appendChild(title);
    box.appendChild(svg('line', { class: 'axis', x1: 0, y1: H - P, x2: W, y2: H - P }));
    series.forEach(function (s, i) {
      if (!s || s.length === 0) return;
      var pts = s.map(function (p) {
        var x = P + ((p[0] - t0) / (t1 - t0)) * (W - 2 * P);
        var y = H - P - (p[1] / vmax) * (H - 2 * P);
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      if (pts.length === 1) pts.push((W - P) + ',' + pts[0].split(',')[1]);
      box.appendChild(svg('polyline', { class: 's' + i, points: pts.join(' ') }));
    });
    wrap.appendChild(box);
    var legend = el('div', { class: 'legend' });
    labels.forEach(function (l, i) {
      var s = series[i];
      legend.appendChild(el('span', { class: 'k' + i }, l + ' ' + (s && s.length ? s[s.length - 1][1] : '—') + (i < labels.length - 1 ? ' · ' : '')));
    });
    wrap.appendChild(legend);
    wrap.appendChild(el('div', { class: 'legend' }, 'last ' + rel(t0, now).replace(' ago', '')));
    return wrap;
  }

  function historyOf(snap, pkg, ref) {
    return snap.history[JSON.stringify([pkg, ref.space || '', ref.name])] || {};
  }

  function act(body, question) {
    if (!window.confirm(question)) return;
    fetch('api/actions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (r) {
        notice(r.ok ? 'Done: ' + body.action + ' on ' + body.package + ' "' + body.name + '"' + (r.body.result !== null && r.body.result !== undefined ? ' (' + r.body.result + ')' : '')
          : 'Refused: ' + (r.body.error || 'error'));
        poll();
      }, function (e) { notice('Failed: ' + e.message); });
  }
  function notice(text) {
    var n = document.getElementById('notice');
    n.textContent = text;
    n.hidden = false;
  }
  function button(label, body, question) {
    var b = el('button', { type: 'button' }, label);
    b.addEventListener('click', function () { act(body, question); });
    return b;
  }

  function waitersCell(pkg, name, waiters, now, actions) {
    if (!waiters.length) return el('td', null, '0');
    var dead = waiters.filter(function (w) { return !w.alive; });
    var cell = el('td', null, waiters.length + ' waiting', dead.length ? el('span', { class: 'sub bad' }, dead.length + ' dead') : null);
    if (actions) dead.forEach(function (w) {
      cell.appendChild(button('drop dead waiter ' + short(w.token), { action: 'drop-waiter', package: pkg, name: name, token: w.token },
        'Drop the dead waiter ' + w.token + ' from ' + pkg + ' "' + name + '"?'));
    });
    return cell;
  }

  var RENDER = {
    lock: {
      head: ['name', 'state', 'holder', 'fence', 'lease ends', 'waiters', ''],
      row: function (s, ref, snap, actions) {
        var h = s.holder;
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, el('span', { class: s.locked ? 'held' : 'free' }, s.locked ? 'held' : 'free')),
          el('td', { class: 'mono', title: h ? h.token : '' }, h ? short(h.token) : '—'),
          el('td', { class: 'mono' }, h ? String(h.fence) : (s.fence !== null ? sub('last ' + s.fence) : '—')),
          el('td', null, h ? rel(h.expiresAt, snap.now) : '—'),
          waitersCell('lock', s.name, s.waiters, snap.now, actions),
          el('td', null, actions && h ? button('release', { action: 'release', package: 'lock', name: s.name, token: h.token },
            'Release lock "' + s.name + '" held by token ' + h.token + '? Its holder loses it at its next renewal.') : null),
        ];
      },
    },
    semaphore: {
      head: ['name', 'in use', 'holders', 'waiters', 'last minutes', ''],
      row: function (s, ref, snap, actions) {
        var full = s.limit !== null && s.free === 0;
        var hist = historyOf(snap, 'semaphore', ref);
        var holders = el('td', null);
        s.holders.forEach(function (h) {
          holders.appendChild(el('span', { class: 'sub mono', title: h.token }, short(h.token) + ' ×' + h.permits + ' · fence ' + h.fence + ' · ' + rel(h.expiresAt, snap.now)));
        });
        if (!s.holders.length) holders.appendChild(document.createTextNode('—'));
        var buttons = el('td', null);
        if (actions) s.holders.forEach(function (h) {
          buttons.appendChild(button('release ' + short(h.token), { action: 'release', package: 'semaphore', name: s.name, token: h.token },
            'Give back the permits of token ' + h.token + ' on semaphore "' + s.name + '"?'));
        });
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, el('span', { class: full ? 'held' : 'free' }, s.used + ' / ' + (s.limit === null ? '?' : s.limit) + (full ? ' full' : ''))),
          holders,
          waitersCell('semaphore', s.name, s.waiters, snap.now, actions),
          el('td', null, chart([hist.used, hist.waiting], ['used', 'waiting'], snap.now)),
          buttons,
        ];
      },
    },
    event: {
      head: ['name', 'auto-reset', 'manual-reset', 'latch'],
      row: function (s) {
        var a = s.autoReset, m = s.manualReset, l = s.latch;
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, a ? a.signals + ' kept signal(s), ' + a.waiters.length + ' waiting' : '—'),
          el('td', null, m ? el('span', { class: m.set ? 'ok' : 'warn' }, m.set ? 'set' : 'not set') : '—', m ? sub('generation ' + m.generation) : null),
          el('td', null, l ? (l.count === 0 ? el('span', { class: 'ok' }, 'open') : 'count ' + l.count) : '—'),
        ];
      },
    },
    quota: {
      head: ['name', 'available', 'reserved', 'leased', 'consumed / supplied', 'next expiry', 'available, last minutes'],
      row: function (s, ref, snap) {
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, el('strong', null, String(s.available))),
          el('td', null, s.reserved + ' in ' + s.holds + ' hold(s)'),
          el('td', null, s.leased + ' in ' + s.leases + ' lease(s)'),
          el('td', null, s.consumed + ' / ' + s.supplied),
          el('td', null, rel(s.nextExpiry, snap.now)),
          el('td', null, chart([historyOf(snap, 'quota', ref).available], ['available'], snap.now)),
        ];
      },
    },
    idempotency: {
      head: ['key', 'state', 'lease ends', 'forgotten', 'size'],
      row: function (s, ref, snap) {
        var cls = s.state === 'completed' ? 'ok' : s.state === 'failed' || s.state === 'expired' ? 'bad' : 'warn';
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, el('span', { class: cls }, s.state.replace('_', ' '))),
          el('td', null, rel(s.leaseUntil, snap.now)),
          el('td', null, s.expiresAt === null ? 'never' : rel(s.expiresAt, snap.now)),
          el('td', null, s.valueBytes + ' B'),
        ];
      },
    },
    leasedkeyq: {
      head: ['name', 'ready', 'in flight', 'waiting getters', 'next keys', 'leases', 'depth, last minutes'],
      row: function (s, ref, snap) {
        var hist = historyOf(snap, 'leasedkeyq', ref);
        var leases = el('td', null);
        s.leases.slice(0, 5).forEach(function (l) {
          leases.appendChild(el('span', { class: 'sub' }, l.key + ' · fence ' + l.fence + ' · ' + (l.expiresAt === null ? 'no timeout' : rel(l.expiresAt, snap.now))));
        });
        if (!s.leases.length) leases.appendChild(document.createTextNode('—'));
        return [
          el('td', { class: 'name' }, s.name),
          el('td', null, String(s.ready)),
          el('td', null, String(s.inFlight)),
          el('td', null, String(s.waiters)),
          el('td', { class: 'mono' }, s.head.slice(0, 5).join(', ') + (s.head.length > 5 ? ', …' : '') || '—'),
          leases,
          el('td', null, chart([hist.ready, hist.inFlight], ['ready', 'in flight'], snap.now)),
        ];
      },
    },
    streams: {
      head: ['stream', 'length', 'groups', 'dead letters', 'lag, dead letters', ''],
      row: function (s, ref, snap, actions) {
        var hist = historyOf(snap, 'streams', ref);
        var groups = el('td', null);
        s.groups.forEach(function (g) {
          var lease = g.lease ? (g.lease.live ? 'lease ' + rel(g.lease.expiresAt, snap.now) : 'lease expired') : (g.mode === 'stateful' ? 'no processor' : '');
          groups.appendChild(el('span', { class: 'sub' }, g.name + ' (' + (g.mode || 'group') + '): lag ' + (g.lag === null ? '?' : g.lag) + ', pending ' + g.pending + ', ' + g.consumers + ' consumer(s)' + (lease ? ', ' + lease : '')));
        });
        if (!s.groups.length) groups.appendChild(document.createTextNode('no groups'));
        var dead = el('td', null, el('span', { class: s.deadLetters ? 'bad' : 'ok' }, String(s.deadLetters)));
        s.recentDeadLetters.slice(0, 3).forEach(function (d) {
          dead.appendChild(el('span', { class: 'sub', title: d.fields }, d.id + ' · ' + d.group + ' · ×' + d.deliveries + ' · ' + d.error));
        });
        return [
          el('td', { class: 'name' }, s.name, s.space !== 'default' ? sub('space ' + s.space) : null),
          el('td', null, String(s.length), s.lastId ? sub('last ' + s.lastId) : null),
          groups,
          dead,
          el('td', null, chart([hist.lag, hist.deadLetters], ['lag', 'dead'], snap.now)),
          el('td', null, actions && s.deadLetters ? button('re-drive dead letters', { action: 'redrive', package: 'streams', name: s.name, space: s.space },
            'Move the dead letters of stream "' + s.name + '" back to it, to be processed again?') : null),
        ];
      },
    },
  };

  function render(snap) {
    document.getElementById('prefix').textContent = 'prefix ' + snap.prefix;
    document.getElementById('clock').textContent = 'server time ' + new Date(snap.now).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    document.getElementById('mode').textContent = snap.actions ? 'actions allowed' : 'read-only';
    var main = document.getElementById('packages');
    var sections = Object.keys(RENDER).map(function (pkg) {
      var items = snap.packages[pkg] || [];
      var r = RENDER[pkg];
      var section = el('section', { id: 'pkg-' + pkg, 'aria-label': TITLES[pkg] },
        el('h2', null, TITLES[pkg], el('span', { class: 'count' }, String(items.length))));
      if (snap.errors && snap.errors[pkg]) section.appendChild(el('p', { class: 'error' }, 'cannot read: ' + snap.errors[pkg]));
      if (!items.length) { section.appendChild(el('p', { class: 'empty' }, 'none under this prefix')); return section; }
      var table = el('table', null, el('thead', null, el('tr', null, r.head.map(function (h) { return el('th', null, h); }))));
      var body = el('tbody');
      items.forEach(function (item) {
        body.appendChild(el('tr', { 'data-name': item.ref.name }, r.row(item.state, item.ref, snap, snap.actions)));
      });
      table.appendChild(body);
      section.appendChild(table);
      return section;
    });
    main.replaceChildren.apply(main, sections);
  }

  var inFlight = false;
  function poll() {
    if (inFlight) return;
    inFlight = true;
    fetch('api/resources', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (snap) {
        last = snap;
        render(snap);
        var s = document.getElementById('status');
        s.textContent = 'live';
        s.className = 'live';
      }, function (e) {
        var s = document.getElementById('status');
        s.textContent = 'disconnected (' + e.message + ')' + (last ? ', showing the last snapshot' : '');
        s.className = 'down';
      })
      .then(function () { inFlight = false; });
  }
  poll();
  setInterval(poll, POLL_MS);
})();
