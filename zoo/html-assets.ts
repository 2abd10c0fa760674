/**
 * report.html's inline style sheet and script. Both are allowed by their
 * sha256 in the page's Content-Security-Policy (html.ts), and nothing else is:
 * the page loads nothing from anywhere.
 *
 * The script sorts the pairs table when a header is clicked (numbers
 * descending first, text ascending; empty cells last either way; ties keep
 * the zoo's order), and fills each pair's <details> from the page's JSON data
 * (html-data.ts) the first time it is opened, with DOM text nodes only (no
 * markup is ever parsed from the data).
 */

export const REPORT_CSS = `
:root { color-scheme: light; --muted: #5b6470; --line: #d8dde3; --head: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 48px; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1d232a; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p { margin: 4px 0 8px; }
.muted, .note { color: var(--muted); }
.note { font-size: 12px; max-width: 70em; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--head); padding: 0 3px; border-radius: 3px; }
figure { margin: 0; overflow-x: auto; }
figure svg { display: block; max-width: none; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: var(--head); position: sticky; top: 0; z-index: 1; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr:hover { background: #eef4fb; }
.wrap { overflow-x: auto; max-width: 100%; }
.scroll { max-height: 70vh; overflow: auto; border: 1px solid var(--line); }
th button { all: unset; cursor: pointer; display: block; width: 100%; }
th button:focus-visible { outline: 2px solid #2f6fb5; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: 9px; }
td.path { white-space: normal; word-break: break-all; max-width: 40em; }
.tag { display: inline-block; background: #e8eef5; border-radius: 3px; padding: 0 5px; margin: 0 3px 1px 0; }
details { border-bottom: 1px solid var(--line); padding: 2px 0; }
details > summary { cursor: pointer; padding: 2px 0; }
details .body { padding: 6px 0 10px 18px; }
details .body table { margin: 4px 0 10px; }
details h4 { margin: 8px 0 2px; font-size: 12px; }
.pair-link { color: #1f5fa8; text-decoration: none; }
.pair-link:hover { text-decoration: underline; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
`;

export const REPORT_SCRIPT = `
(function () {
  'use strict';
  var table = document.getElementById('pairs-table');
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var current = -1;
  var ascending = true;
  function key(row, i, numeric) {
    var cell = row.cells[i];
    if (!numeric) return cell.textContent;
    var v = cell.getAttribute('data-v');
    var x = v === null || v === '' ? NaN : Number(v);
    return isNaN(x) ? null : x;
  }
  headers.forEach(function (th, i) {
    th.querySelector('button').addEventListener('click', function () {
      var numeric = th.getAttribute('data-type') === 'number';
      ascending = current === i ? !ascending : !numeric;
      current = i;
      var sign = ascending ? 1 : -1;
      var rows = Array.prototype.map.call(body.rows, function (row) {
        return { row: row, key: key(row, i, numeric), index: Number(row.getAttribute('data-i')) };
      });
      rows.sort(function (a, b) {
        var order;
        if (a.key === null || b.key === null) order = a.key === b.key ? 0 : a.key === null ? 1 : -1;
        else order = sign * (numeric ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.key.localeCompare(b.key));
        return order !== 0 ? order : a.index - b.index;
      });
      var sorted = document.createDocumentFragment();
      rows.forEach(function (r) { sorted.appendChild(r.row); });
      body.appendChild(sorted);
      headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    });
  });

  var data = null;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return '\\u2014';
    if (typeof v === 'string') return v;
    return v.toFixed(digits === undefined ? 4 : digits);
  }
  function pm(mean, se) {
    return mean === null ? '\\u2014' : fmt(mean) + ' \\u00b1 ' + fmt(se);
  }
  function grid(head, rows, numericFrom) {
    var t = el('table');
    var tr = el('tr');
    head.forEach(function (h, i) { tr.appendChild(el('th', h, i >= numericFrom ? 'num' : '')); });
    t.appendChild(el('thead')).appendChild(tr);
    var tb = t.appendChild(el('tbody'));
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) { row.appendChild(el('td', c, i >= numericFrom ? 'num' : '')); });
      tb.appendChild(row);
    });
    var wrap = el('div', null, 'wrap');
    wrap.appendChild(t);
    return wrap;
  }
  function render(details) {
    if (data === null) data = JSON.parse(document.getElementById('zoo-data').textContent);
    var pair = data.pairs[Number(details.getAttribute('data-pair'))];
    var box = details.querySelector('.body');
    var dl = box.appendChild(el('dl', null, 'meta'));
    pair.info.forEach(function (kv) { dl.appendChild(el('dt', kv[0])); dl.appendChild(el('dd', kv[1])); });
    box.appendChild(el('h4', 'Scores and chance level'));
    box.appendChild(grid(['mode', 'direction', 'raw', 'chance (null mean \\u00b1 se)', 'null sd', 'corrected \\u00b1 se', 'z', 'analytic chance (best |r|)'],
      pair.chance.map(function (c) {
        return [c[0], c[1], fmt(c[2]), pm(c[3], c[4]), fmt(c[5]), pm(c[6], c[7]), fmt(c[8], 1), fmt(c[9])];
      }), 2));
    box.appendChild(el('h4', 'Layers (mean best match per layer; layer null where sampled)'));
    box.appendChild(grid(['model', 'layer', 'depth', 'neurons', 'constant', 'paper', 'penalized', 'null paper', 'null penalized'],
      pair.layers.map(function (l) {
        return [l[0], l[1], String(l[2]), String(l[3]), String(l[4]), fmt(l[5]), fmt(l[6]), pm(l[7], l[8]), pm(l[9], l[10])];
      }), 2));
    details.setAttribute('data-done', '1');
  }
  Array.prototype.forEach.call(document.querySelectorAll('details[data-pair]'), function (d) {
    d.addEventListener('toggle', function () { if (d.open && !d.hasAttribute('data-done')) render(d); });
  });
  function openTarget(hash) {
    var target = hash && hash.indexOf('#pair-') === 0 ? document.getElementById(hash.slice(1)) : null;
    if (target) target.open = true;
  }
  document.addEventListener('click', function (e) {
    var a = e.target.closest ? e.target.closest('a.pair-link') : null;
    if (a) openTarget(a.getAttribute('href'));
  });
  openTarget(location.hash);
})();
`;
