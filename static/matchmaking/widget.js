/* The "people to meet" widget. No build step, no dependencies.
 *
 * Two ways in:
 * - our attendee pages: the server renders the first paint inside [data-mm-widget] (session auth);
 * - embedded in a host page with one script tag (token auth):
 *     <script src="https://<host>/static/matchmaking/widget.js" data-event="<event>"
 *             data-attendee="<external id>" data-token="<token from POST .../token/>"></script>
 *   The widget renders itself right after the script tag.
 *
 * Live: a WebSocket (ws/events/<event>/suggestions/) pushes diffs of the list, each with a
 * sequence number. A gap, a number going backwards, a reconnect or a diff that does not add up ->
 * re-fetch over REST (the truth). Actions (connect / not relevant / block) remove the person at
 * once and go to the REST API; the server pushes the refilled list. "Why?" opens every reason of a
 * card and tells the funnel the suggestion was opened (once per person and page).
 *
 * Feedback: Connect shows a pending state until the server answers, then says the request went;
 * "Not relevant" and "Block" say what happened with an Undo (a DELETE of the mark). Those notices
 * and new people arriving live are announced politely (role="status", aria-live="polite").
 *
 * Language: on our pages Django's JavaScript catalogue (/jsi18n/) is loaded first and gives
 * `gettext`. Embedded, the widget fetches the JSON catalogue (/jsi18n.json, in the language the
 * browser asks for) and keeps it to itself: no globals on the platform's page; without it, English.
 * Reasons come translated by the server (REST and the socket follow the browser's language too).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var _ = window.gettext || function (s) { return s; };
  var ngettext = window.ngettext || function (one, many, n) { return n === 1 ? one : many; };

  // The JSON catalogue's plural rule, for the forms our languages use (no eval on a host's page).
  function pluralRule(expr) {
    var e = String(expr || "").replace(/[\s()]/g, "");
    if (e === "n>1") return function (n) { return n > 1 ? 1 : 0; };
    return function (n) { return n !== 1 ? 1 : 0; };
  }

  function useCatalogue(data) {
    if (!data || !data.catalog) return;
    var cat = data.catalog, plural = pluralRule(data.plural);
    _ = function (s) { var t = cat[s]; return typeof t === "string" ? t : s; };
    ngettext = function (one, many, n) {
      var t = cat[one];
      return Array.isArray(t) && t[plural(n)] ? t[plural(n)] : (n === 1 ? one : many);
    };
  }
  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (m, key) { return values[key]; });
  }

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function capfirst(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; }

  function cardHtml(item, open, pending) {
    var all = item.reasons || [];
    // The server puts personal reasons first; the first two are shown whole, one per line.
    var reasons = all.slice(0, 2).map(function (r) {
      return '<span class="mmw-r">' + esc(capfirst(r.text)) + "</span>";
    }).join("");
    var why = all.map(function (r) { return "<li>" + esc(capfirst(r.text)) + "</li>"; }).join("");
    var meta = [item.headline, item.company].filter(Boolean).map(esc).join(" · ");
    return '<div class="mmw-avatar" aria-hidden="true">' + esc((item.display_name || "?").charAt(0)) + "</div>" +
      '<div class="mmw-body"><div class="mmw-name">' + esc(item.display_name) +
      // "here now" meant online here and in this room on the room page: say which.
      (item.here_now ? ' <span class="mmw-here">' + (all.length && all[0].kind === "here_now" ? _("in your room") : _("online")) +
        "</span>" : "") + "</div>" +
      '<div class="mmw-meta">' + meta + "</div>" +
      '<div class="mmw-reason">' + reasons + "</div>" +
      '<ul class="mmw-why"' + (open ? "" : " hidden") + ">" + why + "</ul>" +
      '<div class="mmw-actions">' +
      '<button type="button" class="mmw-btn mmw-link" data-action="why" aria-expanded="' + (open ? "true" : "false") +
      '">' + (open ? _("Less") : _("Why?")) + "</button>" +
      (pending ? '<button type="button" class="mmw-btn mmw-primary" data-action="connect" disabled aria-busy="true">' +
        esc(_("Sending…")) + "</button>" : '<button type="button" class="mmw-btn mmw-primary" data-action="connect">' +
        esc(_("Connect")) + "</button>") +
      '<button type="button" class="mmw-btn" data-action="not-relevant">' + esc(_("Not relevant")) + "</button>" +
      '<button type="button" class="mmw-btn mmw-danger" data-action="block">' + esc(_("Block")) + "</button></div></div>";
  }

  function Widget(root, opts) {
    this.root = root;
    this.opts = opts;
    this.list = root.querySelector("[data-mm-list]");
    this.empty = root.querySelector("[data-mm-empty]");
    this.status = root.querySelector("[data-mm-status]");
    this.toast = root.querySelector("[data-mm-announce]");
    this.pending = {};  // connect requests in flight: the card stays, its button says so
    this.restored = {};  // brought back by Undo: their return is not announced as new
    this.items = opts.items || [];
    this.seq = opts.seq || 0;
    this.hidden = {};  // acted on: never shown again in this page, whatever a late push says
    this.expanded = {};  // cards whose "why" is open
    this.opened = {};  // people whose "why" was opened in this page: "opened" is posted once each
    this.connects = 0;
    this.retry = 1000;
    var self = this;
    this.list.addEventListener("click", function (e) {
      var btn = e.target.closest("[data-action]");
      if (btn && !btn.disabled) self.act(btn.closest(".mmw-card").dataset.id, btn.dataset.action);
    });
    if (this.toast) {
      this.toast.addEventListener("click", function (e) {
        var undo = e.target.closest("[data-undo]");
        if (undo && self.undoing) self.undoing();
      });
    }
  }

  Widget.prototype.url = function (path) {
    return this.opts.base + "/api/v1/events/" + encodeURIComponent(this.opts.event) + "/attendees/" +
      encodeURIComponent(this.opts.attendee) + "/" + path;
  };

  Widget.prototype.request = function (method, path, body) {
    var headers = {"Accept": "application/json"};
    if (body) headers["Content-Type"] = "application/json";
    if (this.opts.token) {
      headers["Authorization"] = "Attendee-Token " + this.opts.token;
    } else {
      var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
      if (m) headers["X-CSRFToken"] = decodeURIComponent(m[1]);
    }
    return fetch(this.url(path), {
      method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
      credentials: this.opts.token ? "omit" : "same-origin"
    });
  };

  Widget.prototype.render = function () {
    var self = this, fresh = {};
    var old = {};
    Array.prototype.forEach.call(this.list.children, function (li) { old[li.dataset.id] = true; });
    var visible = this.items.filter(function (it) { return !self.hidden[it.external_id]; });
    this.list.innerHTML = "";
    visible.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "mmw-card";
      li.dataset.id = item.external_id;
      li.innerHTML = cardHtml(item, !!self.expanded[item.external_id], !!self.pending[item.external_id]);
      if (!old[item.external_id]) { li.classList.add("mmw-new"); fresh[item.external_id] = li; }
      self.list.appendChild(li);
    });
    setTimeout(function () { Object.keys(fresh).forEach(function (k) { fresh[k].classList.remove("mmw-new"); }); }, 1600);
    if (this.empty) this.empty.hidden = visible.length > 0;
    this.root.dataset.seq = String(this.seq);
  };

  Widget.prototype.refetch = function () {
    var self = this;
    return this.request("GET", "recommendations/?num_results=" + this.opts.size).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (data) {
      self.items = data.items;
      if (self.empty && data.empty_code === "receive_off") {
        // Their own list: say it to them, with the way back on our pages (the platform's otherwise).
        var url = self.root.dataset.consentsUrl;
        self.empty.innerHTML = esc(_("You have turned suggestions off.")) +
          (url ? ' <a href="' + esc(url) + '">' + esc(_("Turn them back on")) + "</a>" : "");
      } else if (self.empty && data.empty_reason) {
        self.empty.textContent = data.empty_reason;
      }
      self.render();
    }).catch(function () { /* the next push or reconnect tries again */ });
  };

  Widget.prototype.apply = function (msg) {
    var self = this;
    var byId = {};
    this.items.forEach(function (it) { byId[it.external_id] = it; });
    (msg.removed || []).forEach(function (id) { delete byId[id]; });
    (msg.added || []).forEach(function (a) { byId[a.item.external_id] = a.item; });
    (msg.changed || []).forEach(function (it) { byId[it.external_id] = it; });
    var next = [];
    for (var i = 0; i < msg.ids.length; i++) {
      var it = byId[msg.ids[i]];
      if (!it) return false;  // the diff does not add up to what we hold: ask REST
      next.push(it);
    }
    // Announced: people new to the list, but not one the attendee just brought back (already said).
    var names = (msg.added || []).filter(function (a) {
      var id = a.item.external_id, back = self.restored[id];
      delete self.restored[id];
      return !self.hidden[id] && !back;
    }).map(function (a) { return a.item.display_name; });
    this.items = next;
    this.render();
    if (names.length) {
      var said = ngettext("New suggestion: %(names)s", "New suggestions: %(names)s", names.length);
      this.say(fmt(said, {names: names.join(", ")}));
    }
    return true;
  };

  // One polite notice at a time; `undo` (a function) adds an Undo button for a few seconds.
  Widget.prototype.say = function (text, undo) {
    if (!this.toast) return;
    var self = this;
    clearTimeout(this.toastTimer);
    this.undoing = undo || null;
    this.toast.innerHTML = '<span>' + esc(text) + "</span>" +
      (undo ? ' <button type="button" class="mmw-btn mmw-link" data-undo>' + esc(_("Undo")) + "</button>" : "");
    // Never hidden: a live region must stay in the page to be announced; empty, it takes no room.
    this.toastTimer = setTimeout(function () { self.toast.innerHTML = ""; self.undoing = null; }, undo ? 8000 : 5000);
  };

  Widget.prototype.onMessage = function (msg) {
    if (msg.type === "message.new") {
      // A message in one of the attendee's threads: an open conversation page takes it (chat.js);
      // anywhere else, a polite notice.
      document.dispatchEvent(new CustomEvent("mm:message", {detail: msg}));
      var open = document.querySelector('[data-mm-thread="' + msg.thread + '"]');
      if (!open && msg.message.sender !== this.opts.attendee) {
        this.say(fmt(_("New message: \u201c%(text)s\u201d"), {text: msg.message.body.slice(0, 80)}));
      }
      return;
    }
    if (msg.type === "hello") {
      document.dispatchEvent(new CustomEvent("mm:hello"));  // a (re)connect: threads catch up
      this.connects += 1;
      this.seq = msg.seq;
      // Live once the server's list and number are in hand, not when the socket opens: a message
      // numbered before the hello arrives would be read against the number the hello replaces.
      if (this.status) this.status.classList.add("mmw-live");
      // The hello carries the list the next diffs apply to: take it as it is (the painted one may
      // show the same people with other reasons). An older server sends the ids only: refetch.
      if (msg.items) { this.items = msg.items; this.render(); return; }
      if (this.connects > 1 || !this.shows(msg.ids)) this.refetch();
      else this.render();
      return;
    }
    if (msg.type !== "suggestions.changed") return;
    if (msg.seq === this.seq && this.shows(msg.ids)) return;  // already seen (sent as the hello was)
    // The next number: apply the diff. Anything else -> ask REST, and take the server's number:
    // ahead, we missed messages; behind, the server's count restarted, and a widget that kept
    // the higher number would ignore every later message.
    var inOrder = msg.seq === this.seq + 1;
    this.seq = msg.seq;
    if (!inOrder || !this.apply(msg)) this.refetch();
  };

  Widget.prototype.shows = function (ids) {
    return (ids || []).join("\n") === this.items.map(function (i) { return i.external_id; }).join("\n");
  };

  Widget.prototype.connect = function () {
    var self = this;
    var url = this.opts.wsBase + "/ws/events/" + encodeURIComponent(this.opts.event) + "/suggestions/" +
      (this.opts.token ? "?token=" + encodeURIComponent(this.opts.token) : "");
    var ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = function () { self.retry = 1000; };
    ws.onmessage = function (e) { self.onMessage(JSON.parse(e.data)); };
    ws.onclose = function (e) {
      if (self.status) self.status.classList.remove("mmw-live");
      if (e.code >= 4400 && e.code < 4500) return;  // not allowed: retrying will not help
      setTimeout(function () { self.connect(); }, self.retry);
      self.retry = Math.min(self.retry * 2, 15000);
    };
  };

  var ACTIONS = {
    "connect": ["connections/", "recipient"],
    "not-relevant": ["not-relevant/", "attendee"],
    "block": ["blocks/", "attendee"]
  };

  // Read when said (not when the script loads): the embedded widget's catalogue arrives later.
  function done(action) {
    return {
      "connect": _("Request sent to %(name)s."),
      "not-relevant": _("%(name)s will not be suggested again."),
      "block": _("%(name)s is blocked: neither of you will be suggested to the other.")
    }[action];
  }

  Widget.prototype.nameOf = function (id) {
    for (var i = 0; i < this.items.length; i++) if (this.items[i].external_id === id) return this.items[i].display_name;
    return id;
  };

  Widget.prototype.act = function (id, action) {
    if (action === "why") return this.toggleWhy(id);
    var self = this, spec = ACTIONS[action];
    if (!spec || this.pending[id]) return;
    var name = this.nameOf(id);
    if (action === "connect") {
      this.pending[id] = true;  // the card stays, its button says "Sending…", until the server answers
    } else {
      this.hidden[id] = true;  // takes effect at once; the server pushes the refilled list
    }
    this.render();
    var body = {};
    body[spec[1]] = id;
    this.request("POST", spec[0], body).then(function (r) {
      delete self.pending[id];
      if (!r.ok) {  // refused: the person comes back, and the attendee is told
        delete self.hidden[id];
        self.render();
        self.say(_("That did not work; please try again."));
        return null;
      }
      self.hidden[id] = true;
      self.render();
      var undo = action === "connect" ? null : function () { self.undo(id, spec[0], name); };
      self.say(fmt(done(action), {name: name}), undo);
      return self.refetchIfQuiet();
    }).catch(function () {
      delete self.pending[id];
      delete self.hidden[id];
      self.render();
      self.say(_("No connection to the server; please try again."));
    });
  };

  // Undo of "not relevant" or "block": DELETE the mark; the person comes back with the next list.
  Widget.prototype.undo = function (id, path, name) {
    var self = this;
    this.undoing = null;
    this.request("DELETE", path + encodeURIComponent(id) + "/").then(function (r) {
      if (!r.ok && r.status !== 404) throw new Error("HTTP " + r.status);
      delete self.hidden[id];
      self.restored[id] = true;
      self.say(fmt(_("%(name)s is back in your suggestions."), {name: name}));
      return self.refetch();
    }).catch(function () { self.say(_("Could not undo; please try again.")); });
  };

  // "Why?" shows every reason of the card; the first time per person, the funnel hears "opened".
  Widget.prototype.toggleWhy = function (id) {
    this.expanded[id] = !this.expanded[id];
    this.render();
    if (this.expanded[id] && !this.opened[id]) {
      this.opened[id] = true;
      this.request("POST", "recommendations/opened/", {attendee: id}).catch(function () { /* best effort */ });
    }
  };

  // The push normally refills the list; without a socket, ask REST.
  Widget.prototype.refetchIfQuiet = function () {
    if (!this.ws || this.ws.readyState !== 1) return this.refetch();
  };

  function start(root, opts) {
    var w = new Widget(root, opts);
    root.mmWidget = w;
    if (!opts.painted) w.refetch();
    w.connect();
    return w;
  }

  function fromPage() {
    var root = document.querySelector("[data-mm-widget]");
    if (!root || root.mmWidget) return;
    var data = document.getElementById("mm-widget-items");
    start(root, {
      event: root.dataset.event, attendee: root.dataset.attendee, size: +root.dataset.size || 6,
      seq: +root.dataset.seq || 0, items: data ? JSON.parse(data.textContent) : [], painted: true,
      base: "", wsBase: (location.protocol === "https:" ? "wss://" : "ws://") + location.host
    });
  }

  function embedded() {
    var src = new URL(script.src, location.href);
    var base = src.origin;
    // The widget's words in the browser's language first; English if the catalogue cannot be had.
    fetch(base + "/jsi18n.json", {credentials: "omit"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(useCatalogue, function () { /* English */ })
      .then(function () { embed(src, base); });
  }

  function embed(src, base) {
    if (!document.querySelector('link[data-mm-css]')) {
      var css = document.createElement("link");
      css.rel = "stylesheet"; css.href = base + src.pathname.replace(/widget\.js$/, "widget.css");
      css.setAttribute("data-mm-css", "");
      document.head.appendChild(css);
    }
    var root = document.createElement("div");
    root.className = "mmw";
    root.setAttribute("data-mm-widget", "");
    root.innerHTML = '<div class="mmw-head"><h2>' + esc(_("People to meet")) + '</h2><span class="mmw-status" data-mm-status>●</span></div>' +
      '<ol class="mmw-list" data-mm-list></ol><p class="mmw-empty" data-mm-empty hidden>' + esc(_("No suggestions yet.")) + "</p>" +
      '<div class="mmw-toast" role="status" aria-live="polite" data-mm-announce></div>';
    script.parentNode.insertBefore(root, script.nextSibling);
    start(root, {
      event: script.dataset.event, attendee: script.dataset.attendee, token: script.dataset.token,
      size: +script.dataset.size || 6, seq: 0, items: [], painted: false,
      base: base, wsBase: (src.protocol === "https:" ? "wss://" : "ws://") + src.host
    });
  }

  if (script && script.dataset.token) embedded();
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fromPage);
  else fromPage();
})();
