// This page's open WebSocket *is* the attendee's presence in the room: connect = join,
// close (leaving the page) = leave; heartbeats keep the visit open.
(function () {
  var _ = window.gettext || function (s) { return s; };
  var el = document.querySelector("[data-mm-presence]");
  var text = el.querySelector("[data-mm-presence-text]");
  var here = document.querySelector("[data-mm-here]");
  var proto = location.protocol === "https:" ? "wss://" : "ws://";
  var timer = null, retry = 1000;
  function open() {
    var ws = new WebSocket(proto + location.host + "/ws/events/" + el.dataset.event + "/rooms/" + encodeURIComponent(el.dataset.room) + "/presence/");
    // Who is here: the list the "joined" message gives, then one change per message ("joined" or
    // "left", with the room's head count after it). A list of another size than a count the
    // server sends (with each change and each heartbeat ack) asks for the whole list again.
    var people = {};
    function render() {
      var others = Object.keys(people).filter(function (id) { return id !== here.dataset.me; })
        .map(function (id) { return people[id]; })
        .sort(function (a, b) { return a.localeCompare(b); });
      here.innerHTML = "";
      others.forEach(function (name) {
        var chip = document.createElement("span"); chip.className = "pt-chip"; chip.textContent = name;
        here.appendChild(chip);
      });
      if (!others.length) { var none = document.createElement("span"); none.className = "pt-muted"; none.textContent = _("Nobody else yet."); here.appendChild(none); }
    }
    function replace(list) {
      people = {};
      list.forEach(function (p) { people[p.external_id] = p.display_name; });
      render();
    }
    function check(count) {
      if (typeof count === "number" && Object.keys(people).length !== count) ws.send(JSON.stringify({type: "presence.sync"}));
    }
    ws.onmessage = function (e) {
      var msg = JSON.parse(e.data);
      if (msg.type === "joined") {
        el.classList.add("pt-on"); text.textContent = _("You are in this room"); retry = 1000;
        clearInterval(timer);
        timer = setInterval(function () { ws.send(JSON.stringify({type: "heartbeat"})); }, msg.heartbeat_interval * 1000);
        replace(msg.people);
      } else if (msg.type === "room.snapshot") {
        replace(msg.people);
      } else if (msg.type === "room.presence") {
        if (msg.joined) people[msg.joined.external_id] = msg.joined.display_name;
        if (msg.left) delete people[msg.left];
        render(); check(msg.count);
      } else if (msg.type === "heartbeat_ack") {
        check(msg.count);
      }
    };
    ws.onclose = function (e) {
      clearInterval(timer); el.classList.remove("pt-on");
      if (e.code >= 4400 && e.code < 4500) { text.textContent = _("You cannot join this room."); return; }
      text.textContent = _("Reconnecting…"); setTimeout(open, retry); retry = Math.min(retry * 2, 15000);
    };
  }
  open();
})();
