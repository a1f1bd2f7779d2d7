// lemdash console: one script, no build step, no dependency. It reads lemdash's own API (the
// same routes as the legacy front end, plus trends, budget, alerts and history), draws its
// charts as SVG, and keeps any sign-in token in memory only.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 15000;
  const state = {
    config: { auth: { mode: "none" } },
    token: null,
    boards: { campaigns: null, mailboxes: null },
    meta: {},
    alerts: [],
    sync: null,
    trends: null,
    budget: null,
    sort: { campaigns: { key: "campaign_name", dir: 1 }, mailboxes: { key: "status", dir: 1 } },
    serverNow: null,
    problems: {},
  };

  // ---- text helpers ----------------------------------------------------------------------
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  };
  const pct = (v) => (typeof v === "number" ? `${v}%` : "—");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");
  const ago = (ms) => {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${Math.round(s / 3600)} h ago`;
  };
  const now = () => (state.serverNow ? state.serverNow.at + (Date.now() - state.serverNow.seen) : Date.now());

  // ---- sign-in: authorization code with PKCE; the token lives in this page's memory ---------
  const b64url = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
  const redirectUri = () => location.origin + location.pathname;

  async function signIn() {
    const auth = state.config.auth;
    const verifier = random(32);
    const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const nonce = random(16);
    sessionStorage.setItem("lemdash.pkce", JSON.stringify({ verifier, state: nonce, hash: location.hash }));
    const target = new URL(auth.authorize_url);
    target.search = new URLSearchParams({
      response_type: "code",
      client_id: auth.client_id,
      redirect_uri: redirectUri(),
      scope: auth.scope,
      state: nonce,
      code_challenge: challenge,
      code_challenge_method: "S256",
    }).toString();
    showNotice("Signing in…");
    location.assign(target.toString());
    return new Promise(() => {}); // the page is leaving
  }

  // Back from the identity provider: exchange the code, then take it out of the address bar.
  async function finishSignIn() {
    const query = new URLSearchParams(location.search);
    const code = query.get("code");
    const refused = query.get("error");
    if (!code && !refused) return;
    const saved = JSON.parse(sessionStorage.getItem("lemdash.pkce") || "null");
    sessionStorage.removeItem("lemdash.pkce");
    history.replaceState(null, "", location.pathname + ((saved && saved.hash) || ""));
    if (refused) throw new Error(`the identity provider refused the sign-in: ${refused}`);
    if (!saved || saved.state !== query.get("state")) {
      throw new Error("the sign-in answer does not match the request that started it; reload to sign in again");
    }
    const auth = state.config.auth;
    const answer = await fetch(auth.token_url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri(),
        client_id: auth.client_id,
        code_verifier: saved.verifier,
      }),
    });
    if (!answer.ok) throw new Error(`the identity provider refused the code (HTTP ${answer.status}); reload to sign in again`);
    const body = await answer.json();
    state.token = body.access_token || body.id_token || null;
    if (!state.token) throw new Error("the identity provider answered without a token");
  }

  // ---- the API ---------------------------------------------------------------------------
  class Problem extends Error {
    constructor(message, retryAfter) {
      super(message);
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    let answer;
    try {
      answer = await fetch(path, Object.assign({ cache: "no-cache" }, options, { headers }));
    } catch (e) {
      throw new Problem(`lemdash cannot be reached (${e.message}); looking again in ${POLL_MS / 1000} s`);
    }
    if (answer.status === 401 && state.config.auth.mode === "jwt") {
      state.token = null;
      await signIn();
    }
    return answer;
  }

  // What an error answer says, in words: its `detail`, and when to look again.
  async function problemOf(answer, what) {
    let detail = "";
    try {
      detail = (await answer.json()).detail || "";
    } catch (_) {
      detail = "";
    }
    const retry = Number(answer.headers.get("retry-after")) || null;
    const again = retry ? `looking again in ${retry} s` : `looking again in ${POLL_MS / 1000} s`;
    if (answer.status === 503) return new Problem(`${what}: ${detail || "not ready yet"}; ${again}`, retry);
    if (answer.status === 502 || answer.status === 504) return new Problem(`${what}: ${detail || "lemlist did not answer"}; ${again}`, retry);
    return new Problem(`${what}: ${detail || `HTTP ${answer.status}`}`, retry);
  }

  async function getJson(path, what) {
    const answer = await api(path);
    if (!answer.ok) throw await problemOf(answer, what);
    return { body: await answer.json(), headers: answer.headers };
  }

  // ---- loading ---------------------------------------------------------------------------
  async function loadBoard(name, path, what) {
    try {
      const { body, headers } = await getJson(path, what);
      const modified = headers.get("last-modified");
      const age = Number(headers.get("x-lemdash-age") || "0");
      state.boards[name] = body;
      state.meta[name] = {
        asOf: modified ? Date.parse(modified) : null,
        age,
        seen: Date.now(),
        activityAsOf: headers.get("x-lemdash-activity-as-of"),
        partial: headers.get("x-lemdash-partial"),
        etag: headers.get("etag"),
      };
      if (modified) state.serverNow = { at: Date.parse(modified) + age * 1000, seen: Date.now() };
      delete state.problems[name];
    } catch (e) {
      state.problems[name] = e;
    }
  }

  async function loadOther(name, path, what, apply) {
    try {
      const { body, headers } = await getJson(path, what);
      apply(body, headers);
      delete state.problems[name];
    } catch (e) {
      state.problems[name] = e;
    }
  }

  // The dashboards and alerts are read on every poll (a 304 while they are unchanged). The
  // trends and the sync's state each cost lemdash a read of the whole sync state: the trends are
  // read again only when the campaigns changed, the sync's state and the budget once a minute
  // (on every poll while a first sync runs).
  let polls = 0;
  async function refresh() {
    const minute = polls++ % 4 === 0 || !state.sync || state.sync.phase !== "steady";
    await Promise.all([
      loadBoard("campaigns", "api/campaigns/dashboard", "The campaigns dashboard"),
      loadBoard("mailboxes", "api/mailboxes", "The mailboxes dashboard"),
      loadOther("alerts", "api/alerts", "The alerts", (b, h) => {
        state.alerts = b;
        state.meta.alerts = { asOf: Date.parse(h.get("last-modified") || ""), age: Number(h.get("x-lemdash-age") || 0), seen: Date.now() };
      }),
      minute ? loadOther("sync", "api/sync", "The sync's state", (b) => (state.sync = b)) : null,
      minute ? loadOther("budget", "api/budget", "The API budget", (b) => (state.budget = b)) : null,
    ]);
    const c = state.meta.campaigns;
    const mark = c ? `${c.etag}|${c.activityAsOf}` : null;
    if (mark === null || mark !== state.trendsMark) {
      await loadOther("trends", "api/trends", "The trends", (b) => {
        state.trends = b;
        state.trendsMark = mark;
      });
    }
    render();
  }

  // ---- freshness -------------------------------------------------------------------------
  function asOfText(meta) {
    if (!meta || !meta.asOf) return "not computed yet";
    const old = meta.age * 1000 + (Date.now() - meta.seen);
    let text = `as of ${new Date(meta.asOf).toLocaleString()} (${ago(old)})`;
    if (meta.activityAsOf) {
      text += `; activity as of ${new Date(meta.activityAsOf).toLocaleTimeString()} (${ago(now() - Date.parse(meta.activityAsOf))})`;
    }
    return text;
  }

  function renderFreshness() {
    const parts = [];
    const sync = state.sync;
    if (sync && sync.phase === "first_sync" && sync.first_sync) {
      const p = sync.first_sync;
      const left = p.estimated_remaining_calls || 0;
      parts.push(`First sync in progress: ${p.calls} lemlist calls made, about ${left} left (about ${Math.ceil(left / 10)} s at lemlist's pace)`);
    } else if (sync && sync.phase === "none") {
      parts.push("No refresh has run yet: the first one is under way");
    }
    if (state.meta.campaigns) parts.push(`Dashboards ${asOfText(state.meta.campaigns)}`);
    if (sync && sync.hooks) {
      const h = sync.hooks;
      if (h.enabled) {
        const last = h.receiver && h.receiver.last_delivery;
        // Misses are counted since the sync state began, and polling made up for each.
        const missed = Object.values(h.misses || {}).reduce((a, b) => a + b, 0);
        const healthy = (h.registered || []).length > 0;
        const since = last ? ago(now() - Date.parse(last)) : "none yet";
        const note = missed ? `; ${missed} activities no hook delivered so far, read by polling` : "";
        parts.push(healthy ? `Webhooks healthy: last event ${since}${note}` : `Webhooks unhealthy: no hook registered at lemlist (polling only)${note}`);
      } else {
        parts.push(`Webhooks off (${h.off_because || "polling only"})`);
      }
    }
    $("freshness").textContent = parts.join(" · ") || "Loading…";
  }

  function renderNotice() {
    const problems = Object.values(state.problems);
    if (!problems.length) return hideNotice();
    showNotice(problems.map((p) => p.message).join(" — "), true);
  }
  function showNotice(text, bad) {
    const n = $("notice");
    n.textContent = text;
    n.className = bad ? "notice error" : "notice";
    n.hidden = false;
  }
  function hideNotice() {
    $("notice").hidden = true;
  }

  // ---- charts (SVG by hand) ----------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs = {}) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };

  // Lines of `series` ({name, values, css}) over `labels`, with a text equivalent as its title.
  function lineChart(series, labels, { width = 640, height = 180, summary, small = false } = {}) {
    const pad = small ? { l: 1, r: 1, t: 2, b: 2 } : { l: 40, r: 8, t: 8, b: 20 };
    const all = series.flatMap((s) => s.values.filter((v) => typeof v === "number"));
    const max = Math.max(1, ...all);
    const n = Math.max(1, labels.length - 1);
    const x = (i) => pad.l + (i * (width - pad.l - pad.r)) / n;
    const y = (v) => height - pad.b - (v / max) * (height - pad.t - pad.b);
    const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": summary });
    const title = svgEl("title");
    title.textContent = summary;
    svg.append(title);
    if (!small) {
      for (const v of [0, max]) {
        const t = svgEl("text", { x: pad.l - 4, y: y(v) + 4, "text-anchor": "end" });
        t.textContent = String(Math.round(v * 100) / 100);
        svg.append(t, svgEl("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), stroke: "#c9d1db" }));
      }
      if (labels.length) {
        const first = svgEl("text", { x: pad.l, y: height - 4 });
        first.textContent = labels[0];
        const last = svgEl("text", { x: width - pad.r, y: height - 4, "text-anchor": "end" });
        last.textContent = labels[labels.length - 1];
        svg.append(first, last);
      }
    }
    for (const s of series) {
      const points = s.values.map((v, i) => (typeof v === "number" ? `${x(i)},${y(v)}` : null)).filter(Boolean);
      if (points.length === 1) {
        const [cx, cy] = points[0].split(",");
        svg.append(svgEl("circle", { cx, cy, r: small ? 1.5 : 3, class: s.css, fill: "currentColor" }));
      } else {
        svg.append(svgEl("polyline", { points: points.join(" "), fill: "none", stroke: "currentColor", "stroke-width": small ? 1.5 : 2, class: s.css }));
      }
    }
    return svg;
  }

  function legend(series) {
    return el("div", { class: "legend", "aria-hidden": "true" }, ...series.map((s) => el("span", { class: s.css, text: s.name })));
  }

  // A chart's figures as a table, for screen readers and for anyone who wants the numbers.
  function figuresTable(caption, columns, rows) {
    return el(
      "details",
      {},
      el("summary", { text: `${caption}: the figures` }),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col", text: c.label })))),
          el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map((c) => el("td", { text: c.text(r) })))))
        )
      )
    );
  }

  // ---- trends ----------------------------------------------------------------------------
  const TREND = [
    { key: "sent", name: "sent", css: "k-sent" },
    { key: "opened", name: "opened", css: "k-opened" },
    { key: "replied", name: "replied", css: "k-replied" },
  ];
  const sum = (a) => (a || []).reduce((x, y) => x + y, 0);
  function trendOf(id) {
    const t = state.trends && state.trends.campaigns && state.trends.campaigns[id];
    return t || null;
  }
  function trendText(id) {
    const t = trendOf(id);
    if (!t) return "no activity counted";
    return `${sum(t.sent)} sent, ${sum(t.opened)} opened, ${sum(t.replied)} replied`;
  }
  function sparkline(id) {
    const t = trendOf(id);
    const days = (state.trends && state.trends.days) || [];
    if (!t) return el("span", { class: "meta", text: "—" });
    const series = TREND.map((s) => ({ name: s.name, css: s.css, values: t[s.key] }));
    const chart = lineChart(series, days, { width: 120, height: 28, small: true, summary: `30 days: ${trendText(id)}` });
    chart.setAttribute("width", "120");
    return chart;
  }

  // ---- tables ----------------------------------------------------------------------------
  const MAILBOX_REASONS = {
    "warming up": "warming in lemwarm; no active campaign sends from it",
    "in use": "sends for active campaigns; lemwarm is paused",
    conflict: "warming in lemwarm while an active campaign sends from it",
    stuck: "neither warming nor sending for an active campaign",
  };
  const perf = (row, window, key) => (row.performance && row.performance[window] ? row.performance[window][key] : null);
  // The campaigns a mailbox sends for (the legacy contract says null for none).
  const uses = (row) => row.campaigns || [];
  const openAlertsOf = (id) => state.alerts.filter((a) => a.subject === id && !a.cleared_at);

  const COLUMNS = {
    campaigns: [
      { key: "campaign_name", label: "Campaign", text: (r) => r.campaign_name, cell: (r) => el("button", { type: "button", class: "link", text: r.campaign_name, onclick: () => go(`#campaign/${r.campaign_id}`) }) },
      { key: "campaign_status", label: "Status", text: (r) => r.campaign_status, cell: (r) => el("span", { class: `status status-${r.campaign_status}`, text: r.campaign_status }) },
      { key: "people_count", label: "People", num: true, text: (r) => String(r.people_count) },
      { key: "companies_count", label: "Companies", num: true, text: (r) => String(r.companies_count) },
      { key: "people_engaged", label: "Engaged", num: true, text: (r) => String(r.people_engaged) },
      { key: "open_rate", label: "Open rate", num: true, text: (r) => pct(r.open_rate) },
      { key: "reply_rate", label: "Reply rate", num: true, text: (r) => pct(r.reply_rate) },
      { key: "trend", label: "30 days", sortValue: (r) => sum((trendOf(r.campaign_id) || {}).sent), text: (r) => trendText(r.campaign_id), cell: (r) => sparkline(r.campaign_id) },
    ],
    mailboxes: [
      { key: "email", label: "Mailbox", text: (r) => r.email, cell: (r) => el("button", { type: "button", class: "link", text: r.email, onclick: () => go(`#mailbox/${r.mailbox_id}`) }) },
      { key: "status", label: "Status", text: (r) => r.status, cell: (r) => el("span", { class: `status status-${r.status.replace(/ /g, "-")}` }, r.status, el("span", { class: "reason", text: MAILBOX_REASONS[r.status] || "" })) },
      { key: "campaigns", label: "Used by", sortValue: (r) => uses(r).length, text: (r) => uses(r).join("; "), cell: (r) => el("span", { class: "uses", title: uses(r).join(", ") }, uses(r).length ? `${uses(r).length}: ${uses(r).slice(0, 3).join(", ")}${uses(r).length > 3 ? ", …" : ""}` : "none") },
      ...["7d", "30d"].flatMap((w) => [
        { key: `${w}.sent`, label: `Sent ${w}`, num: true, sortValue: (r) => perf(r, w, "sent"), text: (r) => (perf(r, w, "sent") === null ? "—" : String(perf(r, w, "sent"))) },
        { key: `${w}.bounce_rate`, label: `Bounce ${w}`, num: true, sortValue: (r) => perf(r, w, "bounce_rate"), text: (r) => pct(perf(r, w, "bounce_rate")) },
        { key: `${w}.open_rate`, label: `Open ${w}`, num: true, sortValue: (r) => perf(r, w, "open_rate"), text: (r) => pct(perf(r, w, "open_rate")) },
        { key: `${w}.reply_rate`, label: `Reply ${w}`, num: true, sortValue: (r) => perf(r, w, "reply_rate"), text: (r) => pct(perf(r, w, "reply_rate")) },
      ]),
      { key: "alerts", label: "Alerts", num: true, sortValue: (r) => openAlertsOf(r.mailbox_id).length, text: (r) => String(openAlertsOf(r.mailbox_id).length), cell: (r) => { const n = openAlertsOf(r.mailbox_id).length; return el("span", { class: n ? "flag" : "", text: String(n), title: n ? "open alerts" : "no open alert" }); } },
    ],
  };

  function sortValue(column, row) {
    if (column.sortValue) return column.sortValue(row);
    return row[column.key];
  }

  // The rows as shown: filtered and sorted as the controls say.
  function shownRows(name) {
    const rows = state.boards[name] || [];
    const filter = $(`${name}-filter`).value.trim().toLowerCase();
    const status = $(`${name}-status`).value;
    const nameKey = name === "campaigns" ? "campaign_name" : "email";
    const statusKey = name === "campaigns" ? "campaign_status" : "status";
    const column = COLUMNS[name].find((c) => c.key === state.sort[name].key);
    const dir = state.sort[name].dir;
    return rows
      .filter((r) => (!filter || String(r[nameKey]).toLowerCase().includes(filter)) && (!status || r[statusKey] === status))
      .map((r, i) => [r, i])
      .sort(([a, i], [b, j]) => {
        const x = sortValue(column, a);
        const y = sortValue(column, b);
        if (x === y || (x === null && y === null)) return i - j;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir;
      })
      .map(([r]) => r);
  }

  function renderTable(name) {
    const table = $(`${name}-table`);
    const sort = state.sort[name];
    const head = el(
      "tr",
      {},
      ...COLUMNS[name].map((c) =>
        el(
          "th",
          { scope: "col", class: c.num ? "num" : null, "aria-sort": sort.key === c.key ? (sort.dir > 0 ? "ascending" : "descending") : "none", "data-key": c.key },
          el("button", {
            type: "button",
            text: c.label,
            onclick: () => {
              state.sort[name] = { key: c.key, dir: sort.key === c.key ? -sort.dir : 1 };
              renderTable(name);
            },
          })
        )
      )
    );
    table.tHead.replaceChildren(head);
    const rows = shownRows(name);
    const body = rows.map((r) =>
      el("tr", { "data-id": r.campaign_id || r.mailbox_id }, ...COLUMNS[name].map((c) => el("td", { class: c.num ? "num" : null }, c.cell ? c.cell(r) : c.text(r))))
    );
    if (!state.boards[name]) {
      const why = state.problems[name] ? state.problems[name].message : "Loading…";
      body.push(el("tr", {}, el("td", { colspan: COLUMNS[name].length, text: why })));
    } else if (!rows.length) {
      body.push(el("tr", {}, el("td", { colspan: COLUMNS[name].length, text: state.boards[name].length ? "No row matches the filter." : "No rows: this team has none yet." })));
    }
    table.tBodies[0].replaceChildren(...body);
    const meta = state.meta[name];
    let asof = asOfText(meta);
    if (meta && meta.partial) asof += ` — incomplete: ${meta.partial}`;
    $(`${name}-asof`).textContent = `${rows.length} of ${(state.boards[name] || []).length} rows, ${asof}`;
    const select = $(`${name}-status`);
    const statuses = [...new Set((state.boards[name] || []).map((r) => r[name === "campaigns" ? "campaign_status" : "status"]))].sort();
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.join("|") !== statuses.join("|")) {
      const chosen = select.value;
      select.replaceChildren(el("option", { value: "", text: "any" }), ...statuses.map((s) => el("option", { value: s, text: s })));
      select.value = statuses.includes(chosen) ? chosen : "";
    }
  }

  // ---- CSV: what the table shows, as shown -------------------------------------------------
  const csvCell = (v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const toCsv = (header, lines) => [header, ...lines].map((l) => l.map((v) => csvCell(String(v))).join(",")).join("\n") + "\n";
  function download(filename, text) {
    const old = document.querySelector("a[data-download]");
    if (old) {
      URL.revokeObjectURL(old.href);
      old.remove();
    }
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: filename, "data-download": filename, hidden: true });
    document.body.append(link);
    link.click();
  }
  function exportTable(name) {
    const columns = COLUMNS[name];
    download(`lemdash-${name}.csv`, toCsv(columns.map((c) => c.label), shownRows(name).map((r) => columns.map((c) => c.text(r)))));
  }

  // ---- alerts ----------------------------------------------------------------------------
  const ALERT_TITLES = { mailbox_conflict: "Mailbox in conflict", mailbox_stuck: "Mailbox stuck", bounce_rate: "Bounce rate", open_rate_drop: "Open rate collapse" };
  const subjectLink = (a) => (a.subject.startsWith("cam_") ? `#campaign/${a.subject}` : `#mailbox/${a.subject}`);
  function alertItem(a) {
    const figure = typeof a.figure === "number" ? `${a.figure}% against a threshold of ${a.threshold}%` : null;
    const slack = a.chat && a.chat.error ? `Slack: not delivered (${a.chat.error})` : null;
    return el(
      "li",
      { class: a.cleared_at ? "cleared" : "open", "data-alert": a.id },
      el("h3", {}, `${ALERT_TITLES[a.kind] || a.kind}: `, el("a", { href: subjectLink(a), text: a.name })),
      figure ? el("p", { text: figure }) : null,
      el("p", { text: a.message }),
      el("p", { class: "meta", text: `raised ${when(a.raised_at)}${a.cleared_at ? `, resolved ${when(a.cleared_at)}` : ", open"}${a.delivered ? "" : "; not yet delivered to the alert topic"}` }),
      slack ? el("p", { class: "flag", text: slack }) : null
    );
  }
  function renderAlerts() {
    const open = state.alerts.filter((a) => !a.cleared_at);
    $("alert-count").textContent = open.length ? String(open.length) : "";
    const list = $("alerts-list");
    const items = [...open, ...state.alerts.filter((a) => a.cleared_at)].map(alertItem);
    if (!items.length) items.push(el("li", { class: "cleared", text: state.problems.alerts ? state.problems.alerts.message : "No alert in the last 30 days." }));
    // Slack refusing posts (a revoked webhook) is said once, above the list.
    const refused = state.alerts.filter((a) => a.chat && a.chat.error);
    if (refused.length) {
      items.unshift(el("li", { class: "open", role: "note", text: `Slack refused ${refused.length} alert${refused.length === 1 ? "" : "s"} (${refused[0].chat.error}): check the webhook in SLACK_WEBHOOK_SECRET; they are not posted again.` }));
    }
    list.replaceChildren(...items);
    $("alerts-asof").textContent = `${open.length} open, ${state.alerts.length - open.length} resolved in the last 30 days; ${asOfText(state.meta.alerts)}`;
  }

  // ---- budget ----------------------------------------------------------------------------
  const CLASSES = [
    { key: "interactive", name: "people", css: "k-interactive" },
    { key: "scheduled", name: "scheduled", css: "k-scheduled" },
    { key: "background", name: "background", css: "k-background" },
  ];
  function renderBudget() {
    const b = state.budget;
    const body = $("budget-body");
    if (!b) {
      body.replaceChildren(el("p", { text: state.problems.budget ? state.problems.budget.message : "Loading…" }));
      return;
    }
    const minutes = b.minutes || [];
    const totals = b.totals || {};
    const labels = minutes.map((m) => new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    const series = [
      ...CLASSES.map((c) => ({ name: `lemdash, ${c.name}`, css: c.css, values: minutes.map((m) => m[c.key]) })),
      { name: "other tools (estimated)", css: "k-others", values: minutes.map((m) => (typeof m.others === "number" ? m.others : null)) },
    ];
    const total = CLASSES.reduce((n, c) => n + (totals[c.key] || 0), 0);
    const summary = `Over the last hour: lemdash sent ${total} requests (${CLASSES.map((c) => `${totals[c.key] || 0} for ${c.name}`).join(", ")}); other tools about ${totals.others === null || totals.others === undefined ? "unknown" : totals.others}; ${totals.rate_limited || 0} answers of 429. lemlist allows ${b.limit_per_minute} a minute.`;
    body.replaceChildren(
      el("p", { text: summary }),
      legend(series),
      lineChart(series, labels, { summary: `Requests per minute. ${summary}` }),
      figuresTable("Requests per minute", [{ label: "minute", text: (m) => new Date(m.minute).toLocaleTimeString() }, ...CLASSES.map((c) => ({ label: c.name, text: (m) => String(m[c.key]) })), { label: "others", text: (m) => (m.others === null ? "—" : String(m.others)) }, { label: "429s", text: (m) => String(m.rate_limited) }], minutes)
    );
    $("budget-asof").textContent = b.as_of ? `as of ${new Date(b.as_of).toLocaleString()} (${ago(now() - Date.parse(b.as_of))})` : "nothing recorded yet";
  }

  // ---- details: history, alerts, actions ---------------------------------------------------
  const dialog = () => $("detail");
  async function openDetail(kind, id) {
    const board = kind === "campaign" ? state.boards.campaigns : state.boards.mailboxes;
    const row = (board || []).find((r) => (kind === "campaign" ? r.campaign_id : r.mailbox_id) === id);
    $("detail-title").textContent = row ? (kind === "campaign" ? row.campaign_name : row.email) : id;
    const body = $("detail-body");
    body.replaceChildren(el("p", { text: "Loading the history…" }));
    if (!dialog().open) dialog().showModal();
    const parts = [];
    if (!row) parts.push(el("p", { class: "missing", text: `No ${kind} ${id} on the dashboard.` }));
    if (row && kind === "campaign") {
      parts.push(el("p", { text: `Status ${row.campaign_status}; ${row.people_count} people, ${row.companies_count} companies, ${row.people_engaged} engaged, open ${pct(row.open_rate)}, reply ${pct(row.reply_rate)}.` }));
      const t = trendOf(id);
      if (t) {
        const series = TREND.map((s) => ({ name: s.name, css: s.css, values: t[s.key] }));
        parts.push(el("h3", { text: "The last 30 days, per day" }), legend(series), lineChart(series, state.trends.days, { summary: `30 days: ${trendText(id)}` }));
      }
      parts.push(actionBar([{ label: "Set inactive", danger: true, path: `api/campaigns/${id}/set-inactive`, question: `Set the campaign ${row.campaign_name} inactive? It stops sending.` }]));
    }
    if (row && kind === "mailbox") {
      parts.push(el("p", {}, `Status ${row.status}: ${MAILBOX_REASONS[row.status] || ""}. Used by ${uses(row).length ? uses(row).join(", ") : "no campaign"}.`));
      const alerts = state.alerts.filter((a) => a.subject === id);
      parts.push(el("h3", { text: "Alerts" }), alerts.length ? el("ul", { class: "alerts" }, ...alerts.map(alertItem)) : el("p", { text: "No alert in the last 30 days." }));
      parts.push(actionBar([
        { label: "Start lemwarm", path: `api/mailboxes/${id}/start-lemwarm`, question: `Start lemwarm on ${row.email}?` },
        { label: "Stop lemwarm", danger: true, path: `api/mailboxes/${id}/stop-lemwarm`, question: `Stop lemwarm on ${row.email}?` },
      ]));
    }
    try {
      const path = kind === "campaign" ? `api/campaigns/${id}/history` : `api/mailboxes/${id}/history`;
      const { body: points } = await getJson(path, "The history");
      parts.push(...historyView(kind, row ? $("detail-title").textContent : id, points));
    } catch (e) {
      parts.push(el("p", { class: "answer bad", text: e.message }));
    }
    body.replaceChildren(...parts);
  }

  function historyView(kind, name, points) {
    const heading = el("h3", { text: `History (${points.length} day${points.length === 1 ? "" : "s"}, up to 90)` });
    if (!points.length) return [heading, el("p", { text: "No history yet: a point is recorded after each refresh, one per day." })];
    const columns =
      kind === "campaign"
        ? [
            { key: "people_engaged", label: "engaged", css: "k-sent" },
            { key: "open_rate", label: "open rate (%)", css: "k-opened" },
            { key: "reply_rate", label: "reply rate (%)", css: "k-replied" },
          ]
        : [
            { key: "sent", label: "sent", css: "k-sent" },
            { key: "opened", label: "opened", css: "k-opened" },
            { key: "replied", label: "replied", css: "k-replied" },
            { key: "bounced", label: "bounced", css: "k-background" },
          ];
    const labels = points.map((p) => p.date);
    const series = columns.map((c) => ({ name: c.label, css: c.css, values: points.map((p) => p[c.key]) }));
    const last = points[points.length - 1];
    const summary = `${name}, ${labels[0]} to ${labels[labels.length - 1]}: ${columns.map((c) => `${c.label} ${last[c.key]}`).join(", ")} on the last day.`;
    const tableColumns = [{ label: "date", text: (p) => p.date }, ...(kind === "mailbox" ? [{ label: "status", text: (p) => p.status }] : [{ label: "people", text: (p) => String(p.people_count) }, { label: "status", text: (p) => p.campaign_status }]), ...columns.map((c) => ({ label: c.label, text: (p) => String(p[c.key]) }))];
    const exporter = el("button", { type: "button", text: "Export history CSV", onclick: () => download(`lemdash-${kind}-history.csv`, toCsv(tableColumns.map((c) => c.label), points.map((p) => tableColumns.map((c) => c.text(p))))) });
    return [heading, legend(series), el("div", { class: "history-chart" }, lineChart(series, labels, { summary })), figuresTable("History", tableColumns, points), exporter];
  }

  function actionBar(actions) {
    const answer = el("p", { class: "answer", role: "status", hidden: true });
    const bar = el(
      "div",
      { class: "actions" },
      ...actions.map((a) => el("button", { type: "button", class: a.danger ? "danger" : null, text: a.label, onclick: () => act(a, answer) }))
    );
    return el("div", {}, bar, answer);
  }

  function confirmed(question) {
    const box = $("confirm");
    $("confirm-text").textContent = question;
    box.showModal();
    return new Promise((resolve) => {
      const done = (value) => {
        box.close();
        $("confirm-yes").onclick = $("confirm-no").onclick = null;
        resolve(value);
      };
      $("confirm-yes").onclick = () => done(true);
      $("confirm-no").onclick = () => done(false);
      box.oncancel = () => done(false);
    });
  }

  async function act(action, answer) {
    if (!(await confirmed(action.question))) return;
    answer.hidden = false;
    answer.className = "answer";
    answer.textContent = "Sent to lemlist…";
    try {
      const r = await api(action.path, { method: "POST" });
      let body = {};
      try {
        body = await r.json();
      } catch (_) {
        body = {};
      }
      if (r.ok) {
        answer.textContent = body.message || "Done.";
      } else {
        answer.className = "answer bad";
        answer.textContent = `Not done: ${body.detail || `HTTP ${r.status}`}`;
      }
    } catch (e) {
      answer.className = "answer bad";
      answer.textContent = `Not done: ${e.message}`;
    }
    await refresh();
  }

  // ---- navigation ------------------------------------------------------------------------
  const TABS = ["campaigns", "mailboxes", "alerts", "budget"];
  function showTab(name) {
    for (const t of TABS) {
      const on = t === name;
      $(`tab-${t}`).setAttribute("aria-selected", String(on));
      $(`tab-${t}`).tabIndex = on ? 0 : -1;
      $(t).hidden = !on;
    }
  }
  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }
  function route() {
    const [what, id] = location.hash.slice(1).split("/");
    if (what === "campaign" && id) {
      showTab("campaigns");
      openDetail("campaign", id);
    } else if (what === "mailbox" && id) {
      showTab("mailboxes");
      openDetail("mailbox", id);
    } else {
      if (dialog().open) dialog().close();
      showTab(TABS.includes(what) ? what : "campaigns");
    }
  }

  function render() {
    renderFreshness();
    renderNotice();
    renderTable("campaigns");
    renderTable("mailboxes");
    renderAlerts();
    renderBudget();
  }

  function wire() {
    TABS.forEach((t, i) => {
      const tab = $(`tab-${t}`);
      tab.addEventListener("click", () => go(`#${t}`));
      tab.addEventListener("keydown", (e) => {
        const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        const next = TABS[(i + step + TABS.length) % TABS.length];
        // The hash first: going to a fragment moves the focus, which then goes to the tab.
        go(`#${next}`);
        $(`tab-${next}`).focus();
      });
    });
    for (const name of ["campaigns", "mailboxes"]) {
      $(`${name}-filter`).addEventListener("input", () => renderTable(name));
      $(`${name}-status`).addEventListener("change", () => renderTable(name));
      $(`${name}-csv`).addEventListener("click", () => exportTable(name));
    }
    $("detail-close").addEventListener("click", () => dialog().close());
    dialog().addEventListener("close", () => {
      const [what] = location.hash.slice(1).split("/");
      if (what === "campaign" || what === "mailbox") history.replaceState(null, "", `#${what === "campaign" ? "campaigns" : "mailboxes"}`);
    });
    window.addEventListener("hashchange", route);
  }

  async function start() {
    wire();
    try {
      const answer = await fetch("console/config", { cache: "no-cache" });
      if (answer.ok) state.config = await answer.json();
      if (state.config.auth.mode === "jwt") {
        await finishSignIn();
        if (!state.token) return signIn();
      }
    } catch (e) {
      showNotice(`Signing in failed: ${e.message}`, true);
      return;
    }
    await refresh();
    route();
    document.body.dataset.ready = "true";
    setInterval(refresh, POLL_MS);
    setInterval(renderFreshness, 1000);
  }

  start();
})();
