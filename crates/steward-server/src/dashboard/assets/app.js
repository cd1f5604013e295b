// Mission Control: the dashboard's only script. Loaded from the server
// itself (the Content-Security-Policy allows nothing else). It builds DOM
// nodes with textContent, never HTML from data; the only HTML it inserts
// is list fragments the server rendered and escaped.
"use strict";

(function () {
  // ---- requests --------------------------------------------------------

  // Every change carries this header: with a session cookie, the server
  // accepts a change only from the dashboard (a CSRF defence).
  const DASHBOARD_HEADERS = { "X-Steward-Dashboard": "1" };

  function api(method, url, body) {
    const init = { method: method, credentials: "same-origin", headers: Object.assign({}, DASHBOARD_HEADERS) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) {
      // not JSON
    }
    return "HTTP " + response.status;
  }

  // Reads a Server-Sent Events response, calling onEvent(name, data, id)
  // for each event; resolves when the stream ends.
  async function readSse(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        let id = null;
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "event") name = v;
          else if (field === "data") data.push(v);
          else if (field === "id") id = v;
        }
        if (data.length === 0) continue;
        let parsed;
        try {
          parsed = JSON.parse(data.join("\n"));
        } catch (_) {
          continue;
        }
        onEvent(name, parsed, id);
      }
    }
  }

  // Follows GET /api/events for as long as the page is open, resuming
  // after the last sequence number seen when the connection drops.
  function followActivity(after, onEntry, status) {
    let last = after || 0;
    const say = function (text, cls) {
      if (!status) return;
      status.textContent = text;
      status.className = "live-status " + (cls || "");
    };
    async function connect() {
      for (;;) {
        try {
          const response = await fetch("/api/events?after=" + encodeURIComponent(last), {
            credentials: "same-origin",
            headers: { Accept: "text/event-stream" },
          });
          if (response.status === 401) {
            say("session ended — reload to log in", "bad");
            return;
          }
          if (!response.ok) throw new Error(await errorText(response));
          say("live", "ok");
          await readSse(response, function (name, data, id) {
            if (data && typeof data.seq === "number") last = Math.max(last, data.seq);
            else if (id) last = Math.max(last, Number(id) || 0);
            onEntry(name, data);
          });
        } catch (_) {
          // dropped; try again below
        }
        say("reconnecting…", "warn");
        await new Promise(function (r) { setTimeout(r, 2000); });
      }
    }
    connect();
  }

  // ---- DOM helpers -----------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    for (const c of children || []) {
      if (c === null || c === undefined) continue;
      node.append(c);
    }
    return node;
  }

  function pretty(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      return String(text);
    }
  }

  function when(ms) {
    const d = new Date(ms);
    return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function money(v) {
    if (v !== 0 && Math.abs(v) < 0.01) return "$" + v.toFixed(4);
    return "$" + v.toFixed(2);
  }

  // ---- approvals (cards in chat and buttons anywhere) -------------------

  function approvalCard(a) {
    const id = encodeURIComponent(a.id);
    const card = el("article", { class: "card approval", "data-approval-id": a.id }, [
      el("header", null, [
        el("h3", { text: a.preview && a.preview.summary ? a.preview.summary : a.tool }),
        el("span", { class: "badge " + (a.effect === "destructive" ? "bad" : "warn"), text: a.effect }),
        el("span", { class: "badge status " + a.status, text: a.status }),
      ]),
      el("p", { class: "meta", text: a.id + " · " + a.agent + " asks to run " + a.tool + " · expires " + when(a.expires_at) }),
    ]);
    const targets = (a.preview && a.preview.targets) || [];
    if (targets.length) {
      const ul = el("ul", { class: "targets" });
      for (const t of targets) {
        ul.append(el("li", { text: (t.name || t.id) + " (" + t.id + ")" + (t.state ? " — now " + t.state : "") }));
      }
      card.append(ul);
    }
    if (a.preview && a.preview.details) card.append(el("pre", { class: "preview", text: a.preview.details }));
    if (a.status === "pending") {
      card.append(
        el("div", { class: "actions" }, [
          el("button", { class: "approve", "data-post": "/api/proposals/" + id + "/approve", text: "Approve" }),
          el("button", { class: "reject", "data-post": "/api/proposals/" + id + "/reject", text: "Reject" }),
          el("span", { class: "result" }),
        ])
      );
    }
    return card;
  }

  // Brings every card of approval `a` on the page up to date.
  function updateApproval(a) {
    document.querySelectorAll('[data-approval-id="' + CSS.escape(a.id) + '"]').forEach(function (card) {
      const status = card.querySelector(".badge.status");
      if (status) {
        status.textContent = a.status;
        status.className = "badge status " + a.status;
      }
      if (a.status !== "pending") {
        const actions = card.querySelector(".actions");
        if (actions) actions.querySelectorAll("button").forEach(function (b) { b.remove(); });
        if (a.outcome && !card.querySelector(".outcome")) card.append(el("p", { class: "outcome", text: a.outcome }));
      }
    });
  }

  // Buttons with data-post="/api/…" POST there (with the dashboard header).
  document.addEventListener("click", async function (event) {
    const button = event.target.closest("button[data-post]");
    if (!button) return;
    event.preventDefault();
    const holder = button.closest(".actions") || button.parentElement;
    const result = holder ? holder.querySelector(".result") : null;
    holder.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    if (result) result.textContent = "…";
    let response;
    try {
      response = await api("POST", button.getAttribute("data-post"));
    } catch (e) {
      if (result) result.textContent = "failed: " + e;
      holder.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      return;
    }
    if (!response.ok) {
      if (result) result.textContent = await errorText(response);
      holder.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      return;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // no body
    }
    if (result) result.textContent = body && body.status ? body.status : "done";
    if (body && body.id && body.status && body.idempotency_key !== undefined) updateApproval(body);
    refreshFragments();
  });

  // ---- live fragments (approvals, tasks) --------------------------------

  const fragments = Array.from(document.querySelectorAll("[data-live-fragment]"));
  let refreshTimer = null;

  function refreshFragments() {
    if (!fragments.length) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async function () {
      for (const node of fragments) {
        try {
          const response = await fetch(node.getAttribute("data-live-fragment"), { credentials: "same-origin" });
          if (response.ok && !response.redirected) node.innerHTML = await response.text();
        } catch (_) {
          // the next event tries again
        }
      }
    }, 150);
  }

  if (fragments.length) {
    const wanted = new Set();
    let after = 0;
    for (const node of fragments) {
      (node.getAttribute("data-live-events") || "").split(",").forEach(function (n) { if (n) wanted.add(n.trim()); });
      after = Math.max(after, Number(node.getAttribute("data-after")) || 0);
    }
    followActivity(after, function (name, entry) {
      const type = entry && entry.event ? entry.event.type : name;
      if (wanted.has(type) || wanted.has(name)) refreshFragments();
    }, document.querySelector("[data-live-status]"));
  }

  // ---- chat ------------------------------------------------------------

  const chat = document.getElementById("chat");
  if (chat) setUpChat(chat);

  function setUpChat(chat) {
    const form = document.getElementById("composer");
    const input = document.getElementById("message");
    const messages = document.getElementById("messages");
    const agent = document.getElementById("agent");
    const send = document.getElementById("send");
    messages.scrollTop = messages.scrollHeight;

    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      const content = input.value.trim();
      if (!content) return;
      send.disabled = true;
      try {
        await sendMessage(content);
      } finally {
        send.disabled = false;
        input.focus();
      }
    });

    function scroll() {
      messages.scrollTop = messages.scrollHeight;
    }

    async function sendMessage(content) {
      let id = chat.getAttribute("data-conversation");
      if (!id) {
        const created = await api("POST", "/api/conversations", { agent: agent.value });
        if (!created.ok) {
          messages.append(el("div", { class: "msg error", text: await errorText(created) }));
          return;
        }
        id = (await created.json()).id;
        chat.setAttribute("data-conversation", id);
        agent.disabled = true;
        history.replaceState(null, "", "/?c=" + encodeURIComponent(id));
      }
      messages.append(el("div", { class: "msg user" }, [el("div", { class: "who", text: "you" }), el("div", { class: "text", text: content })]));
      input.value = "";
      const turn = el("div", { class: "msg assistant live" }, [el("div", { class: "who", text: "steward" })]);
      messages.append(turn);
      scroll();
      const response = await api("POST", "/api/conversations/" + encodeURIComponent(id) + "/messages?stream=true", { content: content });
      if (!response.ok) {
        turn.append(el("div", { class: "error", text: await errorText(response) }));
        turn.classList.remove("live");
        return;
      }
      const ctx = newTurn(turn);
      await readSse(response, function (name, data) {
        render(ctx, data.type || name, data);
        scroll();
      });
      turn.classList.remove("live");
      turn.classList.add("done");
    }
  }

  function newTurn(container) {
    return { node: container, text: null, calls: {}, children: {} };
  }

  // Renders one chat-stream event into a turn (or a delegated sub-turn).
  function render(ctx, type, ev) {
    switch (type) {
      case "text_delta": {
        if (!ctx.text) {
          ctx.text = el("div", { class: "text" });
          ctx.node.append(ctx.text);
        }
        ctx.text.append(ev.delta);
        break;
      }
      case "tool_call_started": {
        ctx.text = null;
        const details = el("details", { class: "tool", "data-call-id": ev.call_id }, [
          el("summary", null, ["tool call ", el("code", { text: ev.name }), " ", el("span", { class: "badge " + (ev.effect === "read" ? "ok" : "warn"), text: ev.effect }), el("span", { class: "call-state", text: " running…" })]),
          el("pre", { text: pretty(ev.arguments) }),
        ]);
        ctx.calls[ev.call_id] = details;
        ctx.node.append(details);
        break;
      }
      case "tool_result": {
        let details = ctx.calls[ev.call_id];
        if (!details) {
          details = el("details", { class: "tool" }, [el("summary", null, ["result of ", el("code", { text: ev.name }), el("span", { class: "call-state" })])]);
          ctx.node.append(details);
        }
        // A call held for approval "fails" for the model; for a person it waits.
        if (!details.classList.contains("awaiting")) {
          const state = details.querySelector(".call-state");
          if (state) state.textContent = ev.ok ? " ✓" : " ✗ failed";
          details.classList.add(ev.ok ? "ok" : "failed");
        }
        details.append(el("div", { class: "meta", text: "output" + (ev.truncated ? " (truncated)" : "") }), el("pre", { class: "out", text: ev.output }));
        break;
      }
      case "tool_debug": {
        const details = ctx.calls[ev.call_id];
        const block = el("div", { class: "debug" }, [el("div", { class: "meta", text: "debug · " + ev.phase }), el("pre", { text: ev.content })]);
        (details || ctx.node).append(block);
        break;
      }
      case "approval_requested": {
        ctx.text = null;
        const asking = ctx.calls[ev.approval.call_id];
        if (asking) {
          const state = asking.querySelector(".call-state");
          if (state) state.textContent = " — waiting for approval";
          asking.classList.add("awaiting");
        }
        ctx.node.append(approvalCard(ev.approval));
        break;
      }
      case "approval_updated": {
        updateApproval(ev.approval);
        break;
      }
      case "tool_progress": {
        // An approved run reporting as it goes (an Ansible task per host…).
        const line = el("div", { class: "progress meta", text: ev.name + ": " + ev.message });
        const card = document.querySelector('[data-approval-id="' + CSS.escape(ev.approval_id) + '"]');
        (card || ctx.node).append(line);
        break;
      }
      case "delegation_started": {
        ctx.text = null;
        const box = el("div", { class: "delegation" }, [el("div", { class: "who", text: "→ " + ev.agent + ": " + ev.task })]);
        ctx.node.append(box);
        const child = newTurn(box);
        ctx.children[ev.child_turn_id] = child;
        ctx.children["agent:" + ev.agent] = child;
        break;
      }
      case "delegated": {
        const inner = ev.event || {};
        const child = ctx.children[inner.turn_id] || ctx.children["agent:" + ev.agent];
        if (child) render(child, inner.type, inner);
        break;
      }
      case "delegation_finished": {
        const child = ctx.children[ev.child_turn_id];
        if (child) child.node.classList.add(ev.ok ? "ok" : "failed");
        break;
      }
      case "turn_finished": {
        const u = ev.usage || {};
        ctx.node.append(el("div", { class: "meta finished", text: "finished (" + ev.finish_reason + ")" + (u.total_tokens ? " · " + u.total_tokens + " tokens" : "") }));
        break;
      }
      case "error": {
        ctx.node.append(el("div", { class: "error", text: ev.message }));
        break;
      }
      default:
        // turn_started, message_stored, task_updated, llm_call: not shown in chat
        break;
    }
  }

  // ---- activity ----------------------------------------------------------

  const activity = document.querySelector("[data-activity]");
  if (activity) setUpActivity(activity);

  function describe(ev) {
    switch (ev.type) {
      case "turn_started": return ["turn started", ev.agent + " · turn " + ev.turn_id];
      case "turn_finished": return ["turn finished", ev.finish_reason + " · " + ev.steps + " steps" + (ev.usage && ev.usage.total_tokens ? " · " + ev.usage.total_tokens + " tokens" : "")];
      case "tool_call_started": return ["tool call", ev.name + " (" + ev.effect + ")"];
      case "tool_result": {
        // A call held for approval "fails" for the model; for a person it waits.
        const waiting = !ev.ok && /^awaiting approval /.test(ev.output || "");
        return ["tool result", ev.name + (ev.ok ? " ✓" : waiting ? " — waiting for approval" : " ✗ failed") + (ev.truncated ? " (truncated)" : "")];
      }
      case "tool_debug": return ["tool debug", ev.name + " · " + ev.phase];
      case "tool_progress": return ["tool progress", ev.name + " (" + ev.approval_id + "): " + ev.message];
      case "approval_requested": return ["approval requested", (ev.approval.preview && ev.approval.preview.summary) || ev.approval.tool];
      case "approval_updated": return ["approval " + ev.approval.status, (ev.approval.preview && ev.approval.preview.summary) || ev.approval.tool];
      case "delegation_started": return ["delegation", "→ " + ev.agent + ": " + ev.task];
      case "delegation_finished": return ["delegation finished", ev.agent + (ev.ok ? " ✓" : " ✗")];
      case "delegated": { const d = describe(ev.event || {}); return [ev.agent + " · " + d[0], d[1]]; }
      case "task_updated": return ["task " + ev.status, ev.task_id + (ev.step_id ? " · step " + ev.step_id + " " + (ev.step_status || "") : "") + (ev.detail ? " · " + ev.detail : "")];
      case "llm_call": {
        const u = ev.usage || {};
        return ["model call", (ev.tier ? ev.tier + " · " : "") + ev.provider + "/" + ev.model + " · " + (u.prompt_tokens || 0) + "+" + (u.completion_tokens || 0) + " tokens · " + money(ev.cost || 0) + (ev.local ? " · local" : "") + " · " + ev.outcome + " · " + ev.latency_ms + " ms"];
      }
      case "error": return ["error", ev.message];
      case "message_stored": return ["message stored", ev.message_id];
      default: return [ev.type || "event", ""];
    }
  }

  function setUpActivity(list) {
    const empty = document.getElementById("activity-empty");
    const hideLlm = document.getElementById("hide-llm");
    hideLlm.addEventListener("change", function () {
      list.classList.toggle("hide-llm", hideLlm.checked);
    });
    followActivity(0, function (name, entry) {
      if (!entry || !entry.event) return;
      const ev = entry.event;
      const inner = ev.type === "delegated" && ev.event ? ev.event : ev;
      if (inner.type === "message_stored") return;
      const d = describe(ev);
      const item = el("li", { class: "entry " + (inner.type || name), "data-seq": String(entry.seq) }, [
        el("span", { class: "at", text: when(entry.at) }),
        el("span", { class: "kind", text: d[0] }),
        el("span", { class: "what", text: d[1] }),
      ]);
      const where = [];
      if (entry.agent) where.push(entry.agent);
      if (entry.conversation_id) {
        const link = el("a", { href: "/?c=" + encodeURIComponent(entry.conversation_id), text: "conversation" });
        item.append(el("span", { class: "where" }, [where.join(" "), where.length ? " · " : "", link]));
      } else if (where.length) {
        item.append(el("span", { class: "where", text: where.join(" ") }));
      }
      if (inner.type === "tool_debug") {
        item.append(el("details", null, [el("summary", { text: "tool " + inner.phase }), el("pre", { text: pretty(inner.content) })]));
      } else if (inner.type === "tool_call_started") {
        item.append(el("details", null, [el("summary", { text: "arguments" }), el("pre", { text: pretty(inner.arguments) })]));
      }
      list.prepend(item);
      while (list.children.length > 500) list.lastElementChild.remove();
      if (empty) empty.hidden = true;
    }, document.querySelector("[data-live-status]"));
  }

  // ---- snapshots ---------------------------------------------------------

  const snapshotForm = document.getElementById("snapshot-save");
  if (snapshotForm) setUpSnapshots(snapshotForm);

  function setUpSnapshots(form) {
    const table = document.querySelector("#snapshots tbody");
    const status = document.getElementById("snapshot-status");
    const current = document.getElementById("snapshot-current");
    const say = function (text, cls) {
      status.textContent = text;
      status.className = "status " + (cls || "");
    };
    const counts = function (s) {
      return s.conversations + " conversations, " + s.messages + " messages, " + s.insights + " insights, " + s.entities + " entities";
    };

    async function load() {
      let response;
      try {
        response = await fetch("/api/state", { credentials: "same-origin" });
      } catch (e) {
        say("The snapshots could not be read: " + e, "bad");
        return;
      }
      if (!response.ok) {
        table.replaceChildren(el("tr", null, [el("td", { colspan: "8", class: "empty", text: response.status === 404 ? "Snapshots are not available on this server." : "" })]));
        if (response.status !== 404) say(await errorText(response), "bad");
        return;
      }
      const body = await response.json();
      if (body.current) current.textContent = "Now: " + counts(body.current);
      const rows = (body.snapshots || []).map(function (s) {
        const at = typeof s.created_at === "number" ? when(s.created_at) : String(s.created_at);
        return el("tr", { "data-snapshot": s.name }, [
          el("td", null, [el("strong", { text: s.name })]),
          el("td", { text: at }),
          el("td", { text: s.created_by || "" }),
          el("td", { text: String(s.conversations) }),
          el("td", { text: String(s.messages) }),
          el("td", { text: String(s.insights) }),
          el("td", { text: String(s.entities) }),
          el("td", null, [el("button", { class: "restore", "data-restore": s.name, text: "Restore" })]),
        ]);
      });
      if (!rows.length) rows.push(el("tr", null, [el("td", { colspan: "8", class: "empty", text: "No snapshots yet." })]));
      table.replaceChildren.apply(table, rows);
    }

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      const name = document.getElementById("snapshot-name").value.trim();
      const replace = document.getElementById("snapshot-replace").checked;
      if (!name) return;
      say("Saving…");
      const response = await api("POST", "/api/state/save", { name: name, replace: replace });
      if (response.status === 409) {
        say("A snapshot named '" + name + "' exists; tick “replace if it exists” to overwrite it.", "warn");
        return;
      }
      if (!response.ok) {
        say(await errorText(response), "bad");
        return;
      }
      const saved = await response.json();
      say("Saved '" + (saved.name || name) + "' (" + counts(saved) + ").", "ok");
      await load();
    });

    table.addEventListener("click", async function (e) {
      const button = e.target.closest("button[data-restore]");
      if (!button) return;
      const name = button.getAttribute("data-restore");
      button.disabled = true;
      say("Restoring '" + name + "'…");
      const response = await api("POST", "/api/state/load", { name: name });
      button.disabled = false;
      if (!response.ok) {
        say(await errorText(response), "bad");
        return;
      }
      const body = await response.json();
      const backup = body.backup && body.backup.name ? " The state before it was saved as '" + body.backup.name + "'." : "";
      say("Restored '" + name + "'." + backup + (body.home ? " Home: " + body.home + "." : ""), "ok");
      await load();
    });

    load();
  }
})();
