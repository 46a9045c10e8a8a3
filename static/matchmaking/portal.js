/* The attendee pages' small behaviours. No build step, no dependencies.
 *
 * Time zone switch: pages show times in the event's zone, labelled; an attendee may read them in
 * their own instead. The browser knows its zone (Intl); the server renders with it from a cookie.
 */
(function () {
  "use strict";
  var box = document.querySelector("[data-mm-tz]");
  if (!box) return;
  var button = box.querySelector("[data-mm-tz-switch]");
  var name = box.dataset.cookie;
  var own = (Intl.DateTimeFormat().resolvedOptions() || {}).timeZone || "";
  if (own && own === box.dataset.eventZone) {
    button.hidden = true;  // the same zone: nothing to switch to
  }
  button.addEventListener("click", function () {
    var usingEvent = box.dataset.isEvent === "1";
    var value = usingEvent ? own : "";  // zone names (Area/City_Name, Etc/GMT+5) are cookie-safe
    var age = usingEvent ? 31536000 : 0;
    document.cookie = name + "=" + value + "; path=/; max-age=" + age + "; SameSite=Lax";
    window.location.reload();
  });
})();
