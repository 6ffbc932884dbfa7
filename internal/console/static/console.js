// Strongroom console (docs/console.md).
//
// Everything here goes through the JSON API under /v1 with the signed-in
// token, exactly as the CLI does: the console has no server side and no
// privileges of its own. The token is kept in one variable of this script
// (never a cookie, URL, localStorage or sessionStorage), so reloading the
// page or 15 idle minutes sign out. The page is built with DOM calls only:
// the Content-Security-Policy requires Trusted Types and allows no inline
// script or style, so there is no innerHTML anywhere.
"use strict";

(() => {
  // The key types of the API (internal/tenant.KeyTypes; a test keeps them equal).
  const KEY_TYPES = ["data", "deterministic", "search_index", "event_bus", "analytics"];
  const IDLE_MS = 15 * 60 * 1000;
  const AUDIT_PAGE = 50;

  let token = null; // the bearer token: this variable only
  let me = null; // GET /v1/tokens/self of the token
  let lastActive = Date.now();
  let wanted = ""; // the view asked for before signing in
  let keepMsg = false; // the next view change keeps the message (a sign-out's reason)

  // ---- DOM ----

  // h makes an element: h("a", {href: "#/x", class: "c", onclick: f}, "text", child…).
  // Only handlers are functions, and links go to a view of this page or a
  // blob this script made: no attribute can carry script or a URL of data.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) {
        if (typeof v !== "function") throw new TypeError("h: " + k + " must be a function");
        el.addEventListener(k.slice(2), v);
      } else if (k === "style" || k === "srcdoc" || k === "src" || k === "formaction" || k === "action") {
        throw new TypeError("h: attribute " + k + " is not allowed");
      } else if (k === "href" && !(String(v).startsWith("#/") || String(v).startsWith("blob:"))) {
        throw new TypeError("h: href must be a view (#/…) or a blob: URL");
      } else if (k === "class") el.className = v;
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const $ = (id) => document.getElementById(id);

  let rendering = ""; // the view (hash) being shown

  // show replaces the page's content, unless the user signed out or went
  // to another view while this one waited for the API.
  function show(...nodes) {
    if (!token || location.hash !== rendering) return;
    $("main").replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  }

  function say(kind, text) {
    const m = $("msg");
    m.className = kind;
    m.textContent = text;
    m.hidden = !text;
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function badge(state) {
    return h("span", { class: "badge " + state }, state);
  }

  function table(headers, rows, empty) {
    if (rows.length === 0) return h("p", { class: "empty" }, empty);
    return h("table", {},
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows));
  }

  // ---- the API ----

  class APIError extends Error {
    constructor(status, body) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.code = (body && body.code) || "";
      this.nextAllowed = body && body.next_allowed;
    }
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let out = null;
    try {
      out = await res.json();
    } catch (e) {
      if (res.ok) throw new APIError(res.status, { message: "the server's answer is not JSON" });
    }
    if (!res.ok) {
      const err = new APIError(res.status, out);
      if (me && (err.code === "unauthenticated" || err.code === "token_revoked" || err.code === "token_expired")) {
        signOut("Signed out: " + err.message);
      }
      throw err;
    }
    return out;
  }

  const tenantPath = (t, rest) => "/v1/tenants/" + encodeURIComponent(t) + rest;

  function explain(err) {
    if (!(err instanceof APIError)) return "The server could not be reached: " + err.message;
    let text = err.code ? err.code + ": " + err.message : err.message;
    if (err.nextAllowed) text += " (next allowed " + when(err.nextAllowed) + ")";
    return text;
  }

  // ---- who may do what (the API decides; this only hides what would be refused) ----

  const isGlobal = () => me && (me.role === "operator" || me.role === "auditor");
  const canChange = () => me && (me.role === "operator" || me.role === "tenant-admin");

  // ---- sign in and out ----

  function signInView(note) {
    // Not type=password: browsers offer to save those whatever autocomplete
    // says, and a token must not end up in a password store. Masked by CSS.
    const input = h("input", { type: "text", id: "token", class: "secret", autocomplete: "off", autocapitalize: "off", spellcheck: "false",
      required: true, placeholder: "srt_…", "data-1p-ignore": true, "data-lpignore": "true", "data-bwignore": true, "data-form-type": "other" });
    const form = h("form", { class: "stack", id: "signin" },
      h("label", {}, h("span", {}, "API token"), input),
      h("button", { type: "submit" }, "Sign in"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const secret = input.value.trim();
      input.value = "";
      if (!secret) return;
      token = secret;
      try {
        const info = await call("GET", "/v1/tokens/self");
        if (info.role === "app") {
          token = null;
          say("error", "An app token can only encrypt and decrypt: sign in with a tenant-admin, operator or auditor token.");
          return;
        }
        me = info;
        lastActive = Date.now();
        say("", "");
        const next = wanted || home();
        wanted = "";
        if (location.hash === next) render();
        else location.hash = next;
      } catch (err) {
        token = null;
        me = null;
        say("error", "Sign-in refused: " + explain(err));
      }
    });
    $("main").replaceChildren(h("section", { class: "panel signin" },
      h("h1", {}, "Sign in"),
      h("p", { class: "hint" }, note || "Paste a tenant-admin, operator or auditor token. It stays in this page only: reloading the page, or 15 idle minutes, signs you out."),
      form));
    input.focus();
  }

  function signOut(why) {
    token = null;
    me = null;
    for (const d of document.querySelectorAll("dialog")) d.remove();
    $("nav").replaceChildren();
    $("who").textContent = "";
    $("signout").hidden = true;
    say(why ? "error" : "", why);
    if (location.hash !== "#/signin") {
      keepMsg = true;
      location.hash = "#/signin";
    } else signInView();
  }

  function home() {
    return isGlobal() ? "#/tenants" : "#/tenants/" + encodeURIComponent(me.tenant) + "/keys";
  }

  // ---- navigation ----

  function header(current) {
    const links = isGlobal()
      ? [["#/tenants", "Tenants"], ["#/audit", "Audit"], ["#/status", "Readiness"]]
      : [[home(), "Keys"], ["#/tenants/" + encodeURIComponent(me.tenant) + "/certificates", "Upload certificates"],
        ["#/tenants/" + encodeURIComponent(me.tenant) + "/audit", "Audit"], ["#/status", "Readiness"]];
    $("nav").replaceChildren(...links.map(([href, text]) =>
      h("a", { href, class: current === text ? "current" : "" }, text)));
    $("who").textContent = (me.name || me.id) + " · " + me.role + (me.tenant ? " of " + me.tenant : "");
    $("signout").hidden = false;
  }

  function tenantTabs(name, current) {
    const base = "#/tenants/" + encodeURIComponent(name);
    return h("nav", { class: "tabs", "aria-label": "Tenant" },
      [["/keys", "Keys"], ["/certificates", "Upload certificates"], ["/audit", "Audit"]].map(([p, text]) =>
        h("a", { href: base + p, class: current === text ? "current" : "" }, text)));
  }

  // Tenant names as the API allows them (internal/tenant.ValidName): a
  // route with anything else, such as "..", is no view.
  const TENANT = "([a-z0-9][a-z0-9-]{0,62})";
  const routes = [
    [/^#\/tenants$/, () => tenantsView()],
    [new RegExp("^#/tenants/" + TENANT + "/keys$"), (m) => keysView(m[1])],
    [new RegExp("^#/tenants/" + TENANT + "/certificates$"), (m) => certsView(m[1])],
    [new RegExp("^#/tenants/" + TENANT + "/audit$"), (m) => auditView(m[1])],
    [/^#\/audit$/, () => auditView("")],
    [/^#\/status$/, () => statusView()],
  ];

  async function render() {
    rendering = location.hash;
    readiness();
    if (!token) {
      if (location.hash && location.hash !== "#/signin") wanted = location.hash;
      signInView();
      return;
    }
    for (const [re, view] of routes) {
      const m = location.hash.match(re);
      if (m) {
        try {
          await view(m);
        } catch (err) {
          if (token) say("error", explain(err));
        }
        return;
      }
    }
    location.hash = home();
  }

  // ---- tenants (operators, auditors) ----

  async function tenantsView() {
    header("Tenants");
    const list = await call("GET", "/v1/tenants");
    const rows = list.tenants.map((t) => h("tr", {},
      h("td", {}, h("a", { href: "#/tenants/" + encodeURIComponent(t.name) + "/keys" }, t.name)),
      h("td", {}, t.env),
      h("td", {}, t.derivation_opt_out ? "allowed" : "forbidden"),
      h("td", { class: "mono" }, t.id),
      h("td", {}, when(t.created))));
    show(h("h1", {}, "Tenants"),
      h("p", { class: "hint" }, "Every tenant of this region. Open one to see its keys, upload certificates and audit log. Tenants are created with strongroom tenant create."),
      table(["Name", "Environment", "Derivation opt-out", "ID", "Created"], rows, "No tenants yet."));
  }

  // ---- keys ----

  async function keysView(name) {
    header(isGlobal() ? "Tenants" : "Keys");
    const list = await call("GET", tenantPath(name, "/keys"));
    const keys = list.keys;

    // Per type: which version new data uses, and how many older ones still decrypt.
    const summary = KEY_TYPES.filter((t) => keys.some((k) => k.type === t)).map((t) => {
      const of = keys.filter((k) => k.type === t);
      const active = of.find((k) => k.state === "active");
      const archived = of.filter((k) => k.state === "archived").length;
      const destroyed = of.filter((k) => k.state === "destroyed").length;
      return h("div", { class: "type-summary", "data-type": t },
        h("b", {}, t),
        active ? "new data: v" + active.version : "no active key",
        archived ? " · " + archived + " archived (decrypt only)" : "",
        destroyed ? " · " + destroyed + " destroyed" : "");
    });

    const tbody = h("tbody", {});
    const tbl = h("table", { id: "keys" },
      h("thead", {}, h("tr", {}, ["Key", "State", "Source", "Derivation", "Release", "Created", "Destroyed", ""].map((t) => h("th", { scope: "col" }, t)))),
      tbody);
    const none = h("p", { class: "empty" }, "No keys of this type yet.");
    const typeSelect = h("select", { id: "type-filter", "aria-label": "Key type" },
      h("option", { value: "" }, "all types"),
      KEY_TYPES.map((t) => h("option", { value: t }, t)));
    function renderRows() {
      const type = typeSelect.value;
      const rows = keys.filter((k) => !type || k.type === type).map((k) => {
        const id = k.tenant + "/" + k.type + "/" + k.version;
        return h("tr", { "data-key": id },
          h("td", { class: "mono" }, id),
          h("td", {}, badge(k.state), k.availability && k.availability !== "available" ? [" ", badge(k.availability)] : null),
          h("td", {}, k.source),
          h("td", {}, k.derivation),
          h("td", { class: "mono" }, k.release),
          h("td", {}, when(k.created)),
          h("td", {}, when(k.destroyed)),
          h("td", {}, canChange() && k.state !== "destroyed"
            ? h("button", { type: "button", class: "danger destroy", onclick: () => confirmDestroy(k, id) }, "Destroy…")
            : null));
      });
      tbody.replaceChildren(...rows);
      tbl.hidden = rows.length === 0;
      none.hidden = rows.length !== 0;
    }
    typeSelect.addEventListener("change", renderRows);
    renderRows();

    const gen = canChange() ? generateForm(name) : null;
    show(
      h("h1", {}, "Keys of " + name),
      isGlobal() ? tenantTabs(name, "Keys") : null,
      h("p", { class: "hint" }, "New data is encrypted under the active key of its type; archived keys still decrypt older data. A destroyed key can never decrypt again."),
      summary.length ? h("div", { class: "summary" }, summary) : null,
      gen,
      h("form", { class: "inline", onsubmit: (e) => e.preventDefault() }, h("label", {}, h("span", {}, "Show"), typeSelect)),
      h("h2", {}, "Versions"),
      tbl, none);
  }

  function generateForm(name) {
    const type = h("select", { id: "generate-type", "aria-label": "Type of the new key" }, KEY_TYPES.map((t) => h("option", { value: t }, t)));
    const button = h("button", { type: "submit", id: "generate" }, "Generate new key");
    const form = h("form", { class: "inline panel-form" },
      h("label", {}, h("span", {}, "Type"), type), button);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        const k = await call("POST", tenantPath(name, "/keys"), { type: type.value });
        await keysView(name);
        say("ok", k.tenant + "/" + k.type + "/" + k.version + " is now active: new encryptions under " + k.type + " use it, and data under older versions still decrypts.");
      } catch (err) {
        say("error", explain(err));
      } finally {
        button.disabled = false;
      }
    });
    return h("section", { class: "panel" },
      h("h2", {}, "Generate a new key"),
      h("p", { class: "hint" }, "The new version becomes active at once; the one before it is archived. Rotation is rate limited per type (24 h in production, 4 h in a sandbox)."),
      form);
  }

  function confirmDestroy(k, id) {
    const input = h("input", { type: "text", id: "confirm", autocomplete: "off", spellcheck: "false", "aria-label": "Type the key to confirm" });
    const ok = h("button", { type: "submit", class: "danger", id: "confirm-destroy", disabled: true }, "Destroy " + id);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { method: "dialog" },
      h("h2", {}, "Destroy " + id + "?"),
      h("p", {}, "This cannot be undone: data encrypted under " + id + " can never be decrypted again, unless you import a backup exported before."),
      h("label", {}, h("span", {}, "Type " + id + " to confirm"), input),
      error,
      h("div", { class: "actions" }, cancel, ok));
    const dialog = h("dialog", { id: "destroy-dialog" }, form);
    input.addEventListener("input", () => { ok.disabled = input.value !== id; });
    cancel.addEventListener("click", () => { dialog.close(); dialog.remove(); });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (input.value !== id) return;
      ok.disabled = true;
      try {
        await call("POST", tenantPath(k.tenant, "/keys/" + encodeURIComponent(k.type) + "/" + k.version + "/destroy"), { confirm: input.value });
        dialog.close();
        dialog.remove();
        await keysView(k.tenant);
        say("ok", id + " is destroyed.");
      } catch (err) {
        error.textContent = explain(err);
        ok.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  }

  // ---- upload certificates ----

  async function certsView(name) {
    header(isGlobal() ? "Tenants" : "Upload certificates");
    const list = await call("GET", tenantPath(name, "/upload-certificates"));
    const rows = list.certificates.map((c) => h("tr", { "data-cert": c.id },
      h("td", { class: "mono" }, c.id),
      h("td", {}, badge(c.state)),
      h("td", { class: "mono wrap" }, c.sha256_fingerprint || ""),
      h("td", {}, when(c.not_after)),
      h("td", {}, when(c.created)),
      h("td", {}, c.state === "retired" ? null
        : h("button", { type: "button", class: "secondary download", onclick: () => download(name, c) },
          c.state === "pending" ? "Download request" : "Download certificate"))));
    let create = null;
    if (canChange()) {
      const days = h("input", { type: "number", id: "valid-days", min: 1, max: 730, value: 365 });
      const button = h("button", { type: "submit", id: "create-cert" }, "Create self-signed certificate");
      const form = h("form", { class: "inline" }, h("label", {}, h("span", {}, "Valid for (days)"), days), button);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        button.disabled = true;
        say("ok", "Making an RSA-4096 key pair in the regional HSM…");
        try {
          const c = await call("POST", tenantPath(name, "/upload-certificates"), { valid_days: Number(days.value) });
          await certsView(name);
          say("ok", "Upload certificate " + c.id + " is active (SHA-256 " + c.sha256_fingerprint + "). Download it to wrap your key material to it.");
        } catch (err) {
          say("error", explain(err));
        } finally {
          button.disabled = false;
        }
      });
      create = h("section", { class: "panel" },
        h("h2", {}, "New upload certificate"),
        h("p", { class: "hint" }, "To bring your own key: wrap it to an upload certificate (RSA-OAEP) and upload it with strongroom key upload. For a certificate your CA signs, use strongroom key upload-cert --csr."),
        form);
    }
    show(h("h1", {}, "Upload certificates of " + name),
      isGlobal() ? tenantTabs(name, "Upload certificates") : null,
      create,
      table(["ID", "State", "SHA-256 fingerprint", "Not after", "Created", ""], rows, "No upload certificates yet."));
  }

  async function download(name, c) {
    try {
      const full = await call("GET", tenantPath(name, "/upload-certificates/" + encodeURIComponent(c.id)));
      const pem = full.certificate || full.csr;
      const file = name + "-" + c.id + (full.certificate ? ".crt.pem" : ".csr.pem");
      const url = URL.createObjectURL(new Blob([pem], { type: "application/x-pem-file" }));
      const a = h("a", { href: url, download: file, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say("ok", "Saved " + file + ": check its SHA-256 fingerprint (openssl x509 -fingerprint -sha256) against " + (full.sha256_fingerprint || "the request"));
    } catch (err) {
      say("error", explain(err));
    }
  }

  // ---- audit ----

  async function auditView(name) {
    header(name && !isGlobal() ? "Audit" : name ? "Tenants" : "Audit");
    const field = (id, label, attrs) => {
      const input = h("input", Object.assign({ id, name: id }, attrs));
      return [h("label", {}, h("span", {}, label), input), input];
    };
    const [tenantLabel, tenantIn] = field("audit-tenant", "Tenant", { type: "text", placeholder: "any", size: 12 });
    const [keyLabel, keyIn] = field("audit-key", "Key", { type: "text", placeholder: "type or type/version", size: 14 });
    const [sinceLabel, sinceIn] = field("audit-since", "Since (UTC)", { type: "datetime-local", step: 1 });
    const [untilLabel, untilIn] = field("audit-until", "Until (UTC)", { type: "datetime-local", step: 1 });
    const action = h("select", { id: "audit-action" }, h("option", { value: "" }, "any"));
    const outcome = h("select", { id: "audit-outcome" }, ["", "ok", "refused", "error"].map((o) => h("option", { value: o }, o || "any")));
    const tbody = h("tbody", {});
    const more = h("button", { type: "button", class: "secondary", id: "audit-more", hidden: true }, "Older entries…");
    const count = h("p", { class: "hint", id: "audit-count" });
    let entries = [];
    let next = 0;

    function rowsShown() {
      const shown = entries.filter((e) => (!action.value || e.action === action.value) && (!outcome.value || e.outcome === outcome.value));
      tbody.replaceChildren(...shown.map((e) => h("tr", { "data-seq": e.seq },
        h("td", { class: "mono" }, e.seq),
        h("td", { class: "time" }, when(e.time)),
        h("td", {}, e.actor_name || e.actor, e.role ? h("div", { class: "hint" }, e.role) : null),
        h("td", {}, e.tenant_name || ""),
        h("td", { class: "mono" }, e.action),
        h("td", { class: "mono" }, e.key || ""),
        h("td", {}, badge(e.outcome)),
        h("td", { class: "wrap" }, [e.reason, e.detail, e.count ? e.count + " operations" : ""].filter(Boolean).join(" · ")))));
      count.textContent = shown.length + " of " + entries.length + " entries loaded" + (next ? " (there are more)" : "");
    }

    function fillActions() {
      const seen = [...new Set(entries.map((e) => e.action))].sort();
      const keep = action.value;
      action.replaceChildren(h("option", { value: "" }, "any"), seen.map((a) => h("option", { value: a, selected: a === keep }, a)));
    }

    function utc(v) {
      if (!v) return "";
      return (v.length === 16 ? v + ":00" : v) + "Z";
    }

    async function load(after) {
      const p = new URLSearchParams();
      if (!name && tenantIn.value.trim()) p.set("tenant", tenantIn.value.trim());
      if (keyIn.value.trim()) p.set("key", keyIn.value.trim());
      if (sinceIn.value) p.set("since", utc(sinceIn.value));
      if (untilIn.value) p.set("until", utc(untilIn.value));
      if (after) p.set("after", after);
      p.set("limit", AUDIT_PAGE);
      const path = (name ? tenantPath(name, "/audit") : "/v1/audit") + "?" + p.toString();
      const list = await call("GET", path);
      entries = after ? entries.concat(list.entries) : list.entries;
      next = list.next || 0;
      more.hidden = !next;
      fillActions();
      rowsShown();
    }

    const form = h("form", { class: "inline", id: "audit-filter" },
      name ? null : tenantLabel, keyLabel, sinceLabel, untilLabel,
      h("label", {}, h("span", {}, "Action"), action),
      h("label", {}, h("span", {}, "Outcome"), outcome),
      h("button", { type: "submit" }, "Apply"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        say("", "");
        await load(0);
      } catch (err) {
        say("error", explain(err));
      }
    });
    action.addEventListener("change", rowsShown);
    outcome.addEventListener("change", rowsShown);
    more.addEventListener("click", async () => {
      try {
        await load(next);
      } catch (err) {
        say("error", explain(err));
      }
    });
    await load(0);
    show(h("h1", {}, name ? "Audit log of " + name : "Audit log"),
      name && isGlobal() ? tenantTabs(name, "Audit") : null,
      h("p", { class: "hint" }, "Entries in sequence order, oldest first. Tenant, key and time are filtered by the server; action and outcome among the entries loaded. strongroom audit verify checks the hash chain and the signed checkpoints."),
      h("section", { class: "panel" }, form),
      count,
      h("table", { id: "audit" },
        h("thead", {}, h("tr", {}, ["Seq", "Time", "Actor", "Tenant", "Action", "Key", "Outcome", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
        tbody),
      h("p", {}, more));
  }

  // ---- readiness ----

  async function readiness() {
    try {
      const res = await fetch("/v1/ready", { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
      const r = await res.json();
      $("ready").replaceChildren("Region " + r.region + " · ", badge(r.status), " · " + r.releases + " releases loaded");
    } catch (err) {
      $("ready").replaceChildren(badge("error"), " the server does not answer");
    }
  }

  async function statusView() {
    header("Readiness");
    if (!isGlobal()) {
      const res = await fetch("/v1/ready", { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
      const r = await res.json();
      show(h("h1", {}, "Readiness"),
        h("div", { class: "summary" },
          h("div", {}, h("b", {}, "Status"), badge(r.status)),
          h("div", {}, h("b", {}, "Region"), r.region),
          h("div", {}, h("b", {}, "Releases loaded"), r.releases),
          h("div", {}, h("b", {}, "Problems"), r.problems)),
        h("p", { class: "hint" }, "Operators and auditors see each release and problem here."));
      return;
    }
    const st = await call("GET", "/v1/status");
    show(h("h1", {}, "Readiness"),
      h("div", { class: "summary" },
        h("div", {}, h("b", {}, "Status"), badge(st.status)),
        h("div", {}, h("b", {}, "Region"), st.region),
        h("div", {}, h("b", {}, "Releases loaded"), st.releases.filter((r) => r.loaded).length)),
      h("h2", {}, "Problems"),
      st.problems.length ? h("ul", { id: "problems" }, st.problems.map((p) => h("li", {}, p))) : h("p", { class: "empty" }, "None: every installed release is loaded and the store answers."),
      h("h2", {}, "Releases"),
      table(["Release", "PBKDF2 iterations", "Created", "Loaded"], st.releases.map((r) => h("tr", {},
        h("td", { class: "mono" }, r.id), h("td", {}, r.iterations), h("td", {}, when(r.created)), h("td", {}, r.loaded ? badge("ok") : badge("error")))),
      "No releases are installed."));
  }

  // ---- start ----

  for (const ev of ["pointerdown", "keydown"]) {
    document.addEventListener(ev, () => { lastActive = Date.now(); }, { passive: true });
  }
  setInterval(() => {
    if (token && Date.now() - lastActive > IDLE_MS) signOut("Signed out after 15 idle minutes.");
  }, 15000);
  $("signout").addEventListener("click", () => signOut(""));
  // A page restored from the back/forward cache does not keep its token.
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) signOut("Signed out: the page was left."); });
  window.addEventListener("pagehide", () => { token = null; me = null; });
  window.addEventListener("hashchange", () => {
    if (!keepMsg) say("", "");
    keepMsg = false;
    render();
  });
  render();
})();
