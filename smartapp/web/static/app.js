// Loads the findings fragment into the page shell; the shell shows a progress state meanwhile.
(function () {
  "use strict";
  var slot = document.getElementById("results-slot");
  if (!slot) { return; }
  var url = slot.getAttribute("data-results-url");
  function fail(message) {
    slot.setAttribute("aria-busy", "false");
    slot.innerHTML = "";
    var box = document.createElement("section");
    box.className = "error";
    box.setAttribute("role", "alert");
    var p = document.createElement("p");
    p.textContent = message;
    var retry = document.createElement("a");
    retry.href = window.location.pathname;
    retry.textContent = "Try again";
    box.appendChild(p);
    box.appendChild(retry);
    slot.appendChild(box);
  }
  fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
    .then(function (response) {
      return response.text().then(function (body) { return { ok: response.ok, body: body }; });
    })
    .then(function (result) {
      if (!result.ok) {
        // Error pages are complete documents: show their message section only.
        var doc = new DOMParser().parseFromString(result.body, "text/html");
        var section = doc.querySelector("section.error");
        slot.setAttribute("aria-busy", "false");
        slot.innerHTML = "";
        if (section) { slot.appendChild(document.importNode(section, true)); } else { fail("SecondLook could not load the findings."); }
        return;
      }
      slot.innerHTML = result.body;
      slot.setAttribute("aria-busy", "false");
      if (window.location.hash) {
        var target = document.getElementById(window.location.hash.slice(1));
        if (target) { target.scrollIntoView(); }
      }
    })
    .catch(function () { fail("SecondLook could not reach its server to load the findings."); });
}());
