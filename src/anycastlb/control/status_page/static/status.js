// The status page refreshes itself: every few seconds it fetches its JSON twin (same cookie) and
// puts the server-rendered, server-escaped HTML it carries in place. No reload, no library.
"use strict";
(function () {
  const main = document.querySelector("main[data-refresh]");
  if (!main) {
    return;
  }
  const url = main.dataset.refresh;
  const every = Number(main.dataset.every) || 2000;
  const stamp = document.getElementById("refreshed");
  let shown = null;

  function say(text, failing) {
    if (stamp) {
      stamp.textContent = text;
      stamp.classList.toggle("failing", failing);
    }
  }

  async function refresh() {
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        window.location.assign("/status/sign-in");
        return;
      }
      if (!response.ok) {
        say("refresh failed: HTTP " + response.status + " (retrying)", true);
      } else {
        const data = await response.json();
        if (data.html !== shown) {
          main.innerHTML = data.html;
          shown = data.html;
        }
        say("updated " + new Date().toLocaleTimeString(), false);
      }
    } catch (error) {
      say("refresh failed: the control plane did not answer (retrying)", true);
    }
    window.setTimeout(refresh, every);
  }

  window.setTimeout(refresh, every);
})();
