// The shop side of the demo: shows what the embedded chat reports, and keeps it in window.chatState for tests.
'use strict';
(() => {
  const chatOrigin = document.body.dataset.chatOrigin;
  const status = document.getElementById('status');
  window.chatState = null;
  window.addEventListener('message', (ev) => {
    // Only the chat we embed may talk to us.
    if (ev.origin !== chatOrigin || !ev.data || ev.data.type !== 'chips-demo-chat') return;
    const s = ev.data.state;
    window.chatState = s;
    const healthy = !s.error && s.total > 0 && s.cookieBack === s.total && s.unknownClient === 0;
    status.className = 'status ' + (healthy ? 'ok' : s.total || s.error ? 'bad' : '');
    status.textContent = s.error ? `Chat: ${s.error}`
      : `Chat session on node ${s.node}: ${s.total} connects, BAYEUX_BROWSER came back ${s.cookieBack}/${s.total}` +
        (s.unknownClient ? `, ${s.unknownClient} landed on a node that did not know the session` : '') +
        (s.disconnect ? ', then disconnected' : '');
  });
})();
