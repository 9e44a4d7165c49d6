"""The preview page: one Jinja2 template with its CSS and script inline (no files to package)."""

from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · broadsheet preview</title>
<style>
  :root { --line: #d5d9e0; --muted: #5b6472; --error: #b42318; --warning: #9a6700; --ok: #1a7f37; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a; background: #eef0f4; }
  header { background: #fff; border-bottom: 1px solid var(--line); padding: 12px 20px; }
  header h1 { font-size: 18px; margin: 0 0 6px; }
  dl.envelope { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
  dl.envelope dt { color: var(--muted); }
  dl.envelope dd { margin: 0; word-break: break-word; }
  .status { float: right; color: var(--muted); font-size: 12px; text-align: right; }
  .banner { margin: 12px 20px 0; padding: 10px 14px; border-radius: 6px; }
  .banner.error { background: #fee4e2; border: 1px solid #fda29b; color: #7a271a; }
  .banner.note { background: #fff8e6; border: 1px solid #f5d58a; color: #5c4400; }
  .banner code { font-weight: 600; }
  nav.tabs { display: flex; gap: 4px; padding: 12px 20px 0; }
  nav.tabs a { padding: 6px 14px; border: 1px solid var(--line); border-bottom: none; border-radius: 6px 6px 0 0;
               background: #f7f8fa; color: inherit; text-decoration: none; }
  nav.tabs a.active { background: #fff; font-weight: 600; }
  section.panel { display: none; background: #fff; border-top: 1px solid var(--line); padding: 16px 20px; }
  section.panel.active { display: block; }
  .frames { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
  figure { margin: 0; }
  figcaption { color: var(--muted); font-size: 12px; margin-bottom: 4px; }
  iframe { display: block; border: 1px solid var(--line); background: #fff; height: 600px; }
  iframe.desktop { width: 800px; }
  iframe.mobile { width: 377px; }  /* 375 px inside a 1 px border */
  pre.text { white-space: pre-wrap; font: 13px/1.5 ui-monospace, Menlo, Consolas, monospace; max-width: 80ch; margin: 0; }
  table.headers { border-collapse: collapse; font: 13px/1.5 ui-monospace, Menlo, Consolas, monospace; }
  table.headers th { text-align: left; padding: 2px 16px 2px 0; color: var(--muted); vertical-align: top; white-space: nowrap; }
  table.headers td { word-break: break-all; }
  ul.findings { list-style: none; padding: 0; margin: 0; }
  ul.findings li { padding: 6px 0; border-bottom: 1px solid #eef0f4; }
  .sev { display: inline-block; min-width: 64px; font-weight: 600; text-transform: uppercase; font-size: 11px; }
  .sev.error { color: var(--error); } .sev.warning { color: var(--warning); }
  .where { color: var(--muted); font: 12px ui-monospace, Menlo, Consolas, monospace; display: block; }
  .count.error { color: var(--error); } .count.warning { color: var(--warning); } .count.ok { color: var(--ok); }
</style>
</head>
<body data-generation="{{ generation }}">
<header>
  <div class="status" id="status">build {{ generation }}{% if seconds %} · {{ "%.0f" | format(seconds * 1000) }} ms{% endif %}<br>
    <a href="/web.html" target="_blank">browser version</a></div>
  <h1 id="subject">{{ email.subject if email else "(no build yet)" }}</h1>
  {% if email %}
  <dl class="envelope">
    <dt>From</dt><dd id="from">{{ email.from_header }}</dd>
    <dt>To</dt><dd id="to">{{ email.to_header }}</dd>
    <dt>Preheader</dt><dd id="preheader">{{ preheader or "(none)" }}</dd>
  </dl>
  {% endif %}
</header>
{% if error %}
<div class="banner error" id="build-error" role="alert">
  <strong>The last rebuild failed{% if email %}; showing the last good build{% endif %}.</strong><br>
  {% if error.where %}<code class="error-where">{{ error.where }}</code>: {% endif %}{{ error.message }}
  {% if error.fix %}<br>Fix: {{ error.fix }}{% endif %}
</div>
{% endif %}
{% if email and email.note %}<div class="banner note">{{ email.note }}</div>{% endif %}
<nav class="tabs">
  <a href="#email" data-tab="email">Email</a>
  <a href="#text" data-tab="text">Text</a>
  <a href="#headers" data-tab="headers">Headers</a>
  <a href="#lint" data-tab="lint">Lint <span id="lint-count">{{ lint_count | safe }}</span></a>
</nav>
<section class="panel" id="panel-email">
  {% if email %}
  <div class="frames">
    <figure><figcaption>Desktop · 800 px</figcaption>
      <iframe class="desktop" id="frame-desktop" title="Desktop" src="/email.html?g={{ generation }}"
              sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe></figure>
    <figure><figcaption>Mobile · 375 px</figcaption>
      <iframe class="mobile" id="frame-mobile" title="Mobile" src="/email.html?g={{ generation }}"
              sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe></figure>
  </div>
  {% else %}<p>Nothing to show until the issue builds once.</p>{% endif %}
</section>
<section class="panel" id="panel-text"><pre class="text" id="text-part">{{ email.text if email else "" }}</pre></section>
<section class="panel" id="panel-headers">
  {% if email %}
  <table class="headers" id="headers">
    <tr><th>From</th><td>{{ email.from_header }}</td></tr>
    <tr><th>To</th><td>{{ email.to_header }}</td></tr>
    <tr><th>Subject</th><td>{{ email.subject }}</td></tr>
    {% for name, value in email.headers.items() %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}
  </table>
  {% endif %}
</section>
<section class="panel" id="panel-lint">{{ findings_html | safe }}</section>
<script>
(function () {
  var generation = {{ generation }};
  function show(name) {
    if (!document.getElementById("panel-" + name)) name = "email";
    document.querySelectorAll("nav.tabs a").forEach(function (a) { a.classList.toggle("active", a.dataset.tab === name); });
    document.querySelectorAll("section.panel").forEach(function (p) { p.classList.toggle("active", p.id === "panel-" + name); });
  }
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });
  show(location.hash.slice(1) || "email");
  function fit(frame) {
    try { var doc = frame.contentDocument; frame.style.height = doc.documentElement.scrollHeight + 2 + "px"; } catch (e) {}
  }
  document.querySelectorAll("iframe").forEach(function (frame) {
    frame.addEventListener("load", function () {
      fit(frame);
      frame.contentDocument.querySelectorAll("img").forEach(function (img) { img.addEventListener("load", function () { fit(frame); }); });
    });
  });
  function refreshFindings() {
    fetch("/findings").then(function (r) { return r.json(); }).then(function (data) {
      if (data.generation !== generation) return;
      document.getElementById("panel-lint").innerHTML = data.html;
      document.getElementById("lint-count").innerHTML = data.count;
    });
  }
  function listen() {
    var source = new EventSource("/events");
    source.addEventListener("build", function (event) { if (Number(event.data) !== generation) location.reload(); });
    source.addEventListener("findings", function (event) { if (Number(event.data) === generation) refreshFindings(); });
    source.onerror = function () { source.close(); setTimeout(listen, 1000); };
  }
  listen();
})();
</script>
</body>
</html>
"""

FINDINGS = r"""{% if not findings %}<p id="lint-clean">No problems found{% if not validated %} (MJML validator still running){% endif %}.</p>
{% else %}<ul class="findings" id="findings">
{% for f in findings %}<li><span class="sev {{ f.severity }}">{{ f.severity }}</span> {{ f.message }}
  <span class="where">{{ f.where }} · {{ f.rule }}</span></li>
{% endfor %}</ul>{% endif %}
{% if validator_note %}<p class="where">{{ validator_note }}</p>{% endif %}"""
