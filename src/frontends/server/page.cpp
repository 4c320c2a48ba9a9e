// The chat page served at GET /. Self-contained on purpose: the server may run where nothing
// outside is reachable, and a page pulling scripts from a CDN would also leak what is asked.
#include "frontends/server/server.h"

namespace vlm::server {

const char* index_html() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vlm chat</title>
<style>
  :root { --bg:#f6f7f9; --fg:#1d2330; --muted:#6b7385; --user:#dfe9ff; --bot:#ffffff; --accent:#2f6fed; --err:#b3261e; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg);
         display:flex; flex-direction:column; height:100vh; }
  header { padding:10px 16px; border-bottom:1px solid #dde1e8; background:#fff; display:flex; gap:12px; align-items:center; flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; }
  header .model { color:var(--muted); font-size:13px; }
  header label { font-size:13px; color:var(--muted); }
  header input[type=number] { width:72px; }
  #log { flex:1; overflow-y:auto; padding:16px; display:flex; flex-direction:column; gap:10px; }
  .msg { max-width:780px; padding:10px 12px; border-radius:10px; white-space:pre-wrap; word-wrap:break-word; box-shadow:0 1px 2px #0001; }
  .user { align-self:flex-end; background:var(--user); }
  .assistant { align-self:flex-start; background:var(--bot); }
  .error { align-self:center; color:var(--err); background:#fdecea; }
  .msg img { max-height:140px; max-width:220px; border-radius:6px; display:block; margin-bottom:6px; }
  .meta { font-size:12px; color:var(--muted); margin-top:4px; }
  form { display:flex; gap:8px; padding:12px 16px; background:#fff; border-top:1px solid #dde1e8; align-items:flex-end; }
  textarea { flex:1; resize:vertical; min-height:44px; max-height:200px; padding:8px; font:inherit; border:1px solid #c9ced8; border-radius:8px; }
  button { padding:9px 14px; border:0; border-radius:8px; background:var(--accent); color:#fff; font:inherit; cursor:pointer; }
  button.secondary { background:#e6e9ef; color:var(--fg); }
  button:disabled { opacity:.5; cursor:default; }
  #thumbs { display:flex; gap:6px; padding:0 16px; background:#fff; }
  #thumbs img { height:48px; border-radius:4px; margin-top:8px; }
</style>
</head>
<body>
<header>
  <h1>vlm chat</h1><span class="model" id="model">…</span>
  <label>max tokens <input type="number" id="maxTokens" value="256" min="1" max="8192"></label>
  <label>temperature <input type="number" id="temperature" value="0" min="0" max="2" step="0.1"></label>
  <button type="button" class="secondary" id="clear">New chat</button>
</header>
<div id="log"></div>
<div id="thumbs"></div>
<form id="form">
  <input type="file" id="file" accept="image/png,image/jpeg,image/webp" multiple hidden>
  <button type="button" class="secondary" id="pick" title="Attach images">Image…</button>
  <textarea id="prompt" placeholder="Ask about an image… (Enter sends, Shift+Enter for a new line)"></textarea>
  <button type="submit" id="send">Send</button>
  <button type="button" class="secondary" id="stop" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];        // OpenAI-shaped messages sent with every turn
let pending = [];        // data URLs of images attached to the next message
let controller = null;
let modelName = "";

fetch("/v1/models").then(r => r.json()).then(j => {
  modelName = (j.data && j.data[0] && j.data[0].id) || "";
  $("model").textContent = modelName;
}).catch(() => { $("model").textContent = "(model list unavailable)"; });

function bubble(cls, text, images) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  for (const url of images || []) { const img = document.createElement("img"); img.src = url; div.appendChild(img); }
  const span = document.createElement("span");
  span.textContent = text;
  div.appendChild(span);
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return span;
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

$("pick").onclick = () => $("file").click();
$("file").onchange = async () => {
  for (const f of $("file").files) pending.push(await readAsDataURL(f));
  $("file").value = "";
  $("thumbs").replaceChildren(...pending.map(u => { const i = document.createElement("img"); i.src = u; return i; }));
};
$("clear").onclick = () => { history = []; $("log").replaceChildren(); };
$("stop").onclick = () => { if (controller) controller.abort(); };
$("prompt").addEventListener("keydown", e => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});

function errorMessage(j, status) {
  return (j && j.error && j.error.message) ? j.error.message : ("HTTP " + status);
}

$("form").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text && pending.length === 0) return;
  const content = pending.map(url => ({ type: "image_url", image_url: { url } }));
  if (text) content.push({ type: "text", text });
  bubble("user", text, pending);
  const userMsg = { role: "user", content };
  pending = []; $("thumbs").replaceChildren(); $("prompt").value = "";

  const out = bubble("assistant", "");
  const meta = document.createElement("div"); meta.className = "meta"; out.parentNode.appendChild(meta);
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  let answer = "", finish = "", usage = null;
  const t0 = performance.now();
  try {
    const body = { model: modelName, messages: history.concat([userMsg]), stream: true,
                   stream_options: { include_usage: true },
                   max_tokens: Number($("maxTokens").value) || 256,
                   temperature: Number($("temperature").value) || 0 };
    const resp = await fetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
                                                        body: JSON.stringify(body), signal: controller.signal });
    if (!resp.ok) {
      let j = null; try { j = await resp.json(); } catch (_) {}
      throw new Error(errorMessage(j, resp.status));
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "", done = false;
    while (!done) {
      const { value, done: eof } = await reader.read();
      if (eof) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut); buf = buf.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") { done = true; break; }
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          if (j.usage) usage = j.usage;
          const c = j.choices && j.choices[0];
          if (!c) continue;
          if (c.delta && c.delta.content) { answer += c.delta.content; out.textContent = answer; $("log").scrollTop = $("log").scrollHeight; }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
    }
    history.push(userMsg, { role: "assistant", content: answer });
    const secs = (performance.now() - t0) / 1000;
    meta.textContent = (usage ? usage.completion_tokens + " tokens, " : "") + secs.toFixed(1) + " s" +
                       (finish === "length" ? " · cut at max tokens" : "");
  } catch (err) {
    if (err.name === "AbortError") { meta.textContent = "stopped"; history.push(userMsg, { role: "assistant", content: answer }); }
    else { bubble("error", String(err.message || err)); }
  } finally {
    controller = null; $("send").disabled = false; $("stop").disabled = true; $("prompt").focus();
  }
};
</script>
</body>
</html>
)HTML";
}

}  // namespace vlm::server
