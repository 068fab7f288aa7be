// The moderation panel. Plain DOM: every element is made with createElement and filled
// with textContent (previews are user content; the policy forbids inline script anyway).
// The tokens live in this closure only: a reload signs out; no cookie, no storage.
"use strict";

(function () {
  // The API is where the page is: `/admin` at the root locally, `/<stage>/admin` behind a
  // named stage.
  const API = location.pathname.replace(/admin\/?$/, "");
  const PAGE = 20;

  const session = { access: null, refresh: null, username: null, scopes: [] };
  const state = {
    status: "open",
    queueCursor: null,
    modlogCursor: null,
    user: null,
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function when(iso) {
    if (!iso) return el("time", { text: "" });
    const date = new Date(iso);
    const shown = isNaN(date) ? iso : date.toLocaleString();
    return el("time", { datetime: iso, title: iso, text: shown });
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
    if (message) $("notice").hidden = true;
  }

  function showNotice(message) {
    const box = $("notice");
    box.textContent = message;
    box.hidden = !message;
    if (message) $("error").hidden = true;
  }

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(status, problem) {
      super(describe(status, problem));
      this.status = status;
      this.problem = problem || {};
    }
  }

  // What a failed answer says: problem+json's detail (else its title), its code and field;
  // the gateway's own refusals are `{"message": ...}`.
  function describe(status, problem) {
    if (!problem || typeof problem !== "object") return `The API answered ${status}.`;
    if (status === 403 && problem.message && !problem.code) {
      return "Forbidden: this account's token has no moderator or admin scope.";
    }
    const text = problem.detail || problem.title || problem.message || `HTTP ${status}`;
    const parts = [text];
    if (problem.code) parts.push(`(${problem.code}${problem.field ? `, field ${problem.field}` : ""})`);
    return `${status}: ${parts.join(" ")}`;
  }

  async function request(method, path, body, token) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    let resp;
    try {
      resp = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, { detail: `The API could not be reached (${err.message}).` });
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = { detail: text.slice(0, 200) };
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  // An authorised call; an expired access token is refreshed once, then the call retried.
  async function api(method, path, body) {
    if (!session.access) throw new ApiError(401, { detail: "Sign in first." });
    try {
      return await request(method, path, body, session.access);
    } catch (err) {
      if (err.status !== 401 || !session.refresh) throw err;
      await refresh();
      return request(method, path, body, session.access);
    }
  }

  async function refresh() {
    try {
      adopt(await request("POST", "v1/auth/refresh", { refresh_token: session.refresh }));
    } catch (err) {
      signOut(`Your session ended: ${err.message}`);
      throw err;
    }
  }

  // The access token's claims, to show who is signed in (the gateway verifies them).
  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const padded = part + "===".slice((part.length + 3) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (_) {
      return {};
    }
  }

  function adopt(tokens) {
    session.access = tokens.access_token;
    session.refresh = tokens.refresh_token || session.refresh;
    const c = claims(session.access);
    session.username = c.username || session.username;
    session.scopes = String(c.scope || "").split(" ").filter(Boolean);
  }

  // ------------------------------------------------------------------ sign in / out
  async function signIn(event) {
    event.preventDefault();
    const login = $("login").value.trim();
    const password = $("password").value;
    if (!login || !password) {
      showError("Enter your username (or email) and password.");
      return;
    }
    const button = $("login-submit");
    button.disabled = true;
    try {
      const tokens = await request("POST", "v1/auth/login", { login, password });
      session.username = login;
      adopt(tokens);
      $("password").value = "";
      if (!session.scopes.includes("moderator") && !session.scopes.includes("admin")) {
        const who = session.username;
        await endSession();
        showError(`${who} is not a moderator: the panel needs the moderator or admin role.`);
        return;
      }
      showError("");
      enterPanel();
    } catch (err) {
      showError(`Sign-in failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function endSession() {
    const token = session.refresh;
    const access = session.access;
    session.access = session.refresh = session.username = null;
    session.scopes = [];
    if (token && access) {
      try {
        await request("POST", "v1/auth/logout", { refresh_token: token }, access);
      } catch (_) {
        // Signing out here ends the page's session whatever the API says.
      }
    }
  }

  function signOut(message) {
    endSession();
    $("panel").hidden = true;
    $("login-view").hidden = false;
    $("sign-out").hidden = true;
    $("whoami").textContent = "";
    $("queue-list").replaceChildren();
    $("modlog-list").replaceChildren();
    $("user-result").replaceChildren();
    showNotice("");
    showError(message || "");
  }

  function enterPanel() {
    $("login-view").hidden = true;
    $("panel").hidden = false;
    $("sign-out").hidden = false;
    const roles = session.scopes.filter((s) => s !== "user").join(", ");
    $("whoami").textContent = `${session.username} (${roles})`;
    switchTab("queue");
  }

  // ------------------------------------------------------------------ tabs
  function switchTab(name) {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    }
    for (const view of ["queue", "user", "modlog"]) {
      $(`${view}-view`).hidden = view !== name;
    }
    if (name === "queue") loadQueue(false);
    if (name === "modlog") loadModlog(false);
    if (name === "user") $("user-query").focus();
  }

  // ------------------------------------------------------------------ queue
  function setStatus(status) {
    state.status = status;
    for (const b of document.querySelectorAll(".toggle button")) {
      b.setAttribute("aria-pressed", String(b.dataset.status === status));
    }
    loadQueue(false);
  }

  async function loadQueue(more) {
    const list = $("queue-list");
    const params = new URLSearchParams({ status: state.status, limit: String(PAGE) });
    if (more && state.queueCursor) params.set("cursor", state.queueCursor);
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `v1/admin/reports?${params}`);
      const items = (page && page.items) || [];
      if (!more) list.replaceChildren();
      for (const entry of items) list.append(queueEntry(entry));
      state.queueCursor = page && page.next_cursor ? page.next_cursor : null;
      $("queue-more").hidden = !state.queueCursor;
      $("queue-empty").hidden = list.children.length > 0;
      list.dataset.loaded = state.status;
    } catch (err) {
      showError(`Could not load the reports: ${err.message}`);
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  function entryId(entry) {
    return entry.id || `${entry.target.type}-${entry.target.id}`;
  }

  function userLink(username) {
    if (!username) return el("span", { class: "muted", text: "unknown" });
    return el("button", {
      type: "button",
      class: "link",
      "data-testid": "user-link",
      text: `@${username}`,
      onclick: () => lookUp(username),
    });
  }

  // The target as the moderator needs to judge it: the image, the words, who wrote them.
  function preview(entry) {
    const p = entry.preview;
    const media = el("div", { class: "media", "data-testid": "report-media" });
    const body = el("div", { class: "preview", "data-testid": "report-preview" });
    if (!p) {
      media.textContent = "gone";
      body.append(el("p", { class: "gone", text: "The reported content is gone." }));
      return [media, body];
    }
    if (p.type === "post") {
      if (p.thumbnail_url) {
        media.append(el("img", { src: p.thumbnail_url, alt: "The post's first image", "data-testid": "report-thumbnail" }));
      } else {
        media.textContent = "no image";
      }
      body.append(
        el("div", { class: "muted" }, "Post by ", userLink(p.author_username)),
        el("p", { class: "content", "data-testid": "report-text", text: p.caption || "" }),
      );
    } else if (p.type === "comment") {
      media.textContent = "comment";
      body.append(
        el("div", { class: "muted" }, "Comment by ", userLink(p.author_username), ` on post ${p.post_id || ""}`),
        el("p", { class: "content", "data-testid": "report-text", text: p.text || "" }),
      );
    } else if (p.type === "user") {
      if (p.avatar_url) {
        media.append(el("img", { src: p.avatar_url, alt: "The account's avatar", "data-testid": "report-thumbnail" }));
      } else {
        media.textContent = "no avatar";
      }
      body.append(
        el("div", { class: "muted" }, "Account ", userLink(p.username)),
        el("p", { class: "content", "data-testid": "report-text", text: p.display_name || "" }),
      );
    }
    return [media, body];
  }

  function queueEntry(entry) {
    const id = entryId(entry);
    const item = el("li", {
      class: `entry ${entry.status || ""}`,
      "data-testid": "report",
      "data-report-id": id,
      "data-target-type": entry.target.type,
      "data-target-id": entry.target.id,
      "data-status": entry.status,
    });
    const [media, body] = preview(entry);
    const reasons = el("span", { "data-testid": "report-reasons" });
    for (const r of entry.reasons || []) reasons.append(el("span", { class: "reason", text: r }));
    body.prepend(
      el(
        "div",
        { class: "meta" },
        el("span", { class: "kind", text: entry.target.type }),
        el("span", {
          class: "count",
          "data-testid": "report-count",
          text: `${entry.report_count} report${entry.report_count === 1 ? "" : "s"}`,
        }),
        reasons,
        el("span", { class: "muted" }, "first ", when(entry.first_reported_at)),
        el("span", { class: "muted", "data-testid": "report-target", text: entryId(entry) }),
      ),
    );
    if (entry.resolution) body.append(resolution(entry.resolution));
    if (entry.status === "open") body.append(actions(entry, item));
    item.append(media, body);
    return item;
  }

  function resolution(r) {
    const text = `${r.action}${r.until ? ` until ${new Date(r.until).toLocaleString()}` : ""} by ${r.moderator_username || "?"}`;
    return el(
      "div",
      { class: "resolution", "data-testid": "report-resolution" },
      el("span", { class: `action ${r.action}`, text }),
      " ",
      when(r.at),
      el("div", { class: "content", text: r.note || "" }),
    );
  }

  // One click per decision; the note is required (it is what the author and the modlog
  // are told).
  function actions(entry, item) {
    const id = entryId(entry);
    const note = el("textarea", {
      "data-testid": "resolve-note",
      "aria-label": "Note (required: why)",
      placeholder: "Note (required): why",
      maxlength: "1000",
    });
    const hours = el("input", {
      type: "number",
      min: "1",
      max: "8760",
      value: "24",
      "data-testid": "suspend-hours",
      "aria-label": "Suspension in hours",
    });
    const buttons = el("div", { class: "buttons" });
    // Suspending or banning over a post or comment acts on its author.
    const whose = entry.target.type === "user" ? "" : " author";
    const choices = [
      ["dismiss", "Dismiss", ""],
      ["remove_content", `Remove ${entry.target.type}`, "danger"],
      ["suspend", `Suspend${whose}`, "warn"],
      ["ban", `Ban${whose}`, "danger"],
    ];
    for (const [action, label, style] of choices) {
      if (action === "remove_content" && entry.target.type === "user") continue;
      const button = el("button", {
        type: "button",
        class: style,
        "data-action": action,
        "data-testid": `resolve-${action}`,
        text: label,
      });
      button.addEventListener("click", () => resolve(id, action, note, hours, item, buttons));
      buttons.append(button);
      if (action === "suspend") buttons.append(hours, el("span", { class: "muted", text: "hours" }));
    }
    return el("div", { class: "act" }, note, buttons);
  }

  async function resolve(id, action, noteInput, hoursInput, item, buttons) {
    const note = noteInput.value.trim();
    if (!note) {
      showError("Write a note first: it is recorded in the modlog.");
      noteInput.focus();
      return;
    }
    const body = { action, note };
    if (action === "suspend") {
      const hours = Number(hoursInput.value);
      if (!Number.isInteger(hours) || hours < 1 || hours > 8760) {
        showError("A suspension lasts 1 to 8760 hours.");
        hoursInput.focus();
        return;
      }
      body.duration_hours = hours;
    }
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      const resolved = await api("POST", `v1/admin/reports/${encodeURIComponent(id)}/resolve`, body);
      const done = resolved && resolved.target ? queueEntry(resolved) : null;
      if (done && state.status === "resolved") item.replaceWith(done);
      else item.remove();
      $("queue-empty").hidden = $("queue-list").children.length > 0;
      showNotice(`${id}: ${action.replace("_", " ")} done.`);
    } catch (err) {
      showError(`Could not resolve ${id}: ${err.message}`);
      for (const b of buttons.querySelectorAll("button")) b.disabled = false;
    }
  }

  // ------------------------------------------------------------------ users
  async function lookUp(username) {
    switchTab("user");
    $("user-query").value = username;
    await loadUser(username);
  }

  async function loadUser(username) {
    const out = $("user-result");
    if (!username) {
      showError("Enter a username.");
      return;
    }
    out.replaceChildren();
    try {
      const user = await api("GET", `v1/admin/users/${encodeURIComponent(username)}`);
      state.user = user;
      out.append(userCard(user));
      showError("");
    } catch (err) {
      showError(`Could not look ${username} up: ${err.message}`);
    }
  }

  function standing(s) {
    if (!s) return el("span", { class: "standing good", "data-testid": "user-standing", text: "In good standing" });
    const what = s.banned ? "Banned" : `Suspended until ${s.until ? new Date(s.until).toLocaleString() : "?"}`;
    return el(
      "span",
      { class: "standing bad", "data-testid": "user-standing", "data-until": s.until || "" },
      what,
      s.note ? ` (${s.note})` : "",
    );
  }

  function userCard(user) {
    const roles = el("div", { class: "roles", "data-testid": "user-roles" }, "Roles: ");
    for (const r of user.roles || []) roles.append(el("span", { class: "kind", text: r }));
    const card = el(
      "div",
      { class: "card user-card", "data-testid": "user-card", "data-username": user.username },
      el("h2", { text: `@${user.username}` }),
      el("div", { class: "muted", text: `id ${user.user_id}` }),
      roles,
      standing(user.suspension),
    );
    if (user.suspension) {
      const note = el("textarea", { "data-testid": "unsuspend-note", placeholder: "Note (required): why lift it", maxlength: "1000" });
      const button = el("button", { type: "button", class: "primary", "data-testid": "unsuspend", text: "Lift suspension" });
      button.addEventListener("click", () => unsuspend(user.username, note, button));
      card.append(el("div", { class: "act" }, note, el("div", { class: "buttons" }, button)));
    }
    card.append(el("h2", { text: "Recent actions" }));
    const log = el("ol", { class: "log", "data-testid": "user-actions" });
    for (const a of user.actions || []) log.append(modlogLine(a));
    if (!log.children.length) card.append(el("p", { class: "hint", text: "No moderator action on this account." }));
    card.append(log);
    return card;
  }

  async function unsuspend(username, noteInput, button) {
    const note = noteInput.value.trim();
    if (!note) {
      showError("Write a note first: it is recorded in the modlog.");
      noteInput.focus();
      return;
    }
    button.disabled = true;
    try {
      await api("POST", `v1/admin/users/${encodeURIComponent(username)}/unsuspend`, { note });
      showNotice(`${username}: suspension lifted.`);
      await loadUser(username);
    } catch (err) {
      showError(`Could not lift ${username}'s suspension: ${err.message}`);
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ modlog
  async function loadModlog(more) {
    const list = $("modlog-list");
    const params = new URLSearchParams({ limit: String(PAGE) });
    const type = $("modlog-target-type").value;
    const id = $("modlog-target-id").value.trim();
    if (type && id) {
      params.set("target_type", type);
      params.set("target_id", id);
    }
    if (more && state.modlogCursor) params.set("cursor", state.modlogCursor);
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `v1/admin/modlog?${params}`);
      if (!more) list.replaceChildren();
      for (const entry of (page && page.items) || []) list.append(modlogLine(entry));
      state.modlogCursor = page && page.next_cursor ? page.next_cursor : null;
      $("modlog-more").hidden = !state.modlogCursor;
      $("modlog-empty").hidden = list.children.length > 0;
      list.dataset.loaded = "true";
    } catch (err) {
      showError(`Could not load the modlog: ${err.message}`);
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  function modlogLine(a) {
    const target = a.target || {};
    const what = [a.action];
    if (a.role) what.push(a.role);
    if (a.until) what.push(`until ${new Date(a.until).toLocaleString()}`);
    const why = a.note || a.reason || "";
    return el(
      "li",
      {
        "data-testid": "modlog-entry",
        "data-action": a.action,
        "data-target-type": target.type,
        "data-target-id": target.id,
      },
      when(a.at),
      el("span", { class: `action ${a.action}`, text: what.join(" ") }),
      el(
        "span",
        {},
        `${a.moderator_username || a.moderator_id || "?"} on ${target.type || "?"} ${target.id || ""}`,
        why ? el("div", { class: "content", text: why }) : null,
      ),
    );
  }

  // ------------------------------------------------------------------ wiring
  function start() {
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => switchTab(tab.dataset.tab));
    }
    for (const b of document.querySelectorAll(".toggle button")) {
      b.addEventListener("click", () => setStatus(b.dataset.status));
    }
    $("queue-open").setAttribute("aria-pressed", "true");
    $("queue-resolved").setAttribute("aria-pressed", "false");
    $("queue-refresh").addEventListener("click", () => loadQueue(false));
    $("queue-more").addEventListener("click", () => loadQueue(true));
    $("modlog-more").addEventListener("click", () => loadModlog(true));
    $("modlog-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadModlog(false);
    });
    $("user-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadUser($("user-query").value.trim());
    });
    document.body.dataset.ready = "true";
    $("login").focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
