"""The demo's web page: the live MJPEG stream beside the live numbers, which a little inline script polls from
/stats.json twice a second (model, input size, FPS, per-stage and frame-to-display latency, dropped frames,
the current frame's detections per class, viewers). Values from the model go in through ``textContent``
only, so a class name is never read as HTML."""
from __future__ import annotations

from html import escape

POLL_MS = 500

PAGE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ margin: 0; background: #111; color: #ddd; font: 14px/1.4 system-ui, sans-serif; }}
 header {{ padding: 8px 12px; background: #1c1c1c; }}
 header h1 {{ font-size: 16px; margin: 0; color: #fff; }}
 #sharing {{ color: #9ab; font-size: 12px; }}
 main {{ display: flex; flex-wrap: wrap; gap: 12px; padding: 12px; align-items: flex-start; }}
 #stream {{ max-width: 100%; height: auto; background: #000; display: block; }}
 aside {{ min-width: 240px; }}
 table {{ border-collapse: collapse; }}
 td, th {{ padding: 1px 10px 1px 0; text-align: left; font-weight: normal; }}
 td.value {{ text-align: right; font-variant-numeric: tabular-nums; color: #fff; }}
 h2 {{ font-size: 13px; margin: 12px 0 4px; color: #9ab; }}
 #status {{ font-size: 12px; color: #9ab; }}
</style></head>
<body>
<header><h1>nanogfl demo: <span id="model">{title}</span> &middot; input <span id="input-size">-</span>
 &middot; <span id="mode">-</span></h1><div id="sharing">{sharing}</div></header>
<main>
 <img id="stream" src="/stream" alt="live annotated stream">
 <aside>
  <table>
   <tr><th>FPS</th><td class="value" id="fps">-</td></tr>
   <tr><th>frame-to-display latency</th><td class="value" id="latency">-</td></tr>
   <tr><th>frames shown</th><td class="value" id="frames">-</td></tr>
   <tr><th>frames dropped</th><td class="value" id="dropped">-</td></tr>
   <tr><th>viewers</th><td class="value" id="viewers">-</td></tr>
  </table>
  <h2>per-stage latency (median of recent frames)</h2>
  <table><tbody id="stages"></tbody></table>
  <h2>detections in the current frame (<span id="objects">-</span>)</h2>
  <table><tbody id="classes"></tbody></table>
  <p id="status">connecting...</p>
 </aside>
</main>
<script>
"use strict";
const byId = (id) => document.getElementById(id);
const number = (value, digits) => (value === null || value === undefined) ? "-" : value.toFixed(digits);
function row(name, value) {{
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  const td = document.createElement("td");
  th.textContent = name;
  td.textContent = value;
  td.className = "value";
  tr.append(th, td);
  return tr;
}}
function show(stats) {{
  byId("model").textContent = stats.model;
  byId("input-size").textContent = stats.input_size.join("x");
  byId("mode").textContent = stats.mode;
  byId("fps").textContent = number(stats.fps, 1);
  byId("latency").textContent = number(stats.latency_ms, 1) + " ms";
  byId("frames").textContent = stats.frames;
  byId("dropped").textContent = stats.dropped;
  byId("viewers").textContent = stats.server.viewers + " of at most " + stats.server.max_clients;
  byId("sharing").textContent = stats.server.sharing;
  byId("stages").replaceChildren(...Object.entries(stats.stages_ms).map(
    ([stage, ms]) => row(stage, number(ms, 1) + " ms")));
  const classes = Object.entries(stats.classes);
  byId("objects").textContent = stats.objects;
  byId("classes").replaceChildren(...(classes.length ? classes.map(([name, count]) => row(name, count))
                                                      : [row("none", "")]));
}}
async function poll() {{
  try {{
    const response = await fetch("/stats.json", {{cache: "no-store"}});
    if (!response.ok) throw new Error("HTTP " + response.status);
    const stats = await response.json();
    if (stats.model !== undefined) show(stats);
    byId("status").textContent = "live, updated " + new Date().toLocaleTimeString();
  }} catch (error) {{
    byId("status").textContent = "no answer from the demo (" + error.message + "); retrying";
  }}
  setTimeout(poll, {poll_ms});
}}
byId("stream").addEventListener("error", () => {{
  byId("status").textContent = "the stream was refused or ended (too many viewers? see --max-clients)";
}});
poll();
</script>
</body></html>
"""


def render_page(title: str, sharing: str) -> str:
    """The page, headed by ``title`` (the model) and ``sharing`` (who can open it)."""
    return PAGE_TEMPLATE.format(title=escape(title), sharing=escape(sharing), poll_ms=POLL_MS)
