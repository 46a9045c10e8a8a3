/* A conversation page: messages arrive on the widget's socket (widget.js re-dispatches them as
 * "mm:message"), numbered per thread. The next number is appended; a gap, or a reconnect
 * ("mm:hello"), fetches what is missing over REST; a number already shown is ignored. Sending
 * posts over REST without leaving the page (the form still works without scripts). */
(function () {
  var _ = window.gettext || function (s) { return s; };
  var list = document.querySelector("[data-mm-thread]");
  if (!list) return;
  var form = document.querySelector("[data-mm-send]");
  var thread = +list.dataset.mmThread;
  var me = list.dataset.me;
  var names = JSON.parse(document.getElementById("mm-thread-names").textContent);
  var api = "/api/v1/events/" + encodeURIComponent(list.dataset.event) + "/attendees/" +
    encodeURIComponent(me) + "/connections/" + thread + "/messages/";
  var last = +list.dataset.last || 0;
  var catching = null;

  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function append(m) {
    if (m.number <= last) return;  // shown already (our own answer, then its push)
    last = m.number;
    var li = document.createElement("li");
    li.className = "pt-msg" + (m.sender === me ? " pt-mine" : "");
    li.dataset.number = m.number;
    var who = document.createElement("span");
    who.className = "pt-msg-who";
    who.textContent = names[m.sender] || m.sender;
    var body = document.createElement("span");
    body.textContent = m.body;
    li.appendChild(who);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(body);
    list.appendChild(li);
    li.scrollIntoView({block: "nearest"});
  }

  function catchUp() {
    if (catching) return catching;
    catching = fetch(api + "?after=" + last, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : {messages: []}; })
      .then(function (data) { data.messages.forEach(append); })
      .catch(function () { /* the next message or reconnect tries again */ })
      .then(function () { catching = null; });
    return catching;
  }

  document.addEventListener("mm:message", function (e) {
    var msg = e.detail;
    if (msg.thread !== thread) return;
    if (msg.message.number === last + 1) append(msg.message);
    else if (msg.message.number > last + 1) catchUp();
  });
  document.addEventListener("mm:hello", catchUp);

  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var box = form.querySelector("textarea");
      var text = box.value.trim();
      if (!text) return;
      var button = form.querySelector("button");
      button.disabled = true;
      fetch(api, {
        method: "POST", credentials: "same-origin",
        headers: {"Accept": "application/json", "Content-Type": "application/json", "X-CSRFToken": csrf()},
        body: JSON.stringify({body: text})
      }).then(function (r) {
        return r.json().then(function (data) { return {ok: r.ok, data: data}; });
      }).then(function (res) {
        if (res.ok) {
          box.value = "";
          if (res.data.number === last + 1) append(res.data); else catchUp();
        } else {
          form.querySelector("[data-mm-send-error]").textContent = (res.data.body || [res.data.detail || _("Not sent.")])[0];
        }
      }).catch(function () {
        form.querySelector("[data-mm-send-error]").textContent = _("Not sent: no connection. Try again.");
      }).then(function () { button.disabled = false; });
    });
  }
})();
