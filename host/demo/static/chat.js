// The chat widget: a CometD-like session against the node behind this page's origin — a handshake, then connects
// (long polls), optionally a disconnect. Each step shows whether BAYEUX_BROWSER came back to the server. It reports
// its state with postMessage: to the page that embeds it, or to itself when it is the top-level page.
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  // connects=N runs N connects and stops (tests); absent or 0 keeps polling like a real chat (the demo).
  const wanted = Math.max(0, Math.min(1000, parseInt(params.get('connects') || '0', 10) || 0));
  const endWithDisconnect = params.get('disconnect') === '1';
  const embedded = document.body.dataset.embedded === 'true';
  const keepLast = 50; // log entries kept on screen in polling mode
  const maxPolls = 100000; // a polling page still stops some day

  const state = {
    done: false, error: '', clientId: '', node: '', handshakes: 0, newBrowser: false,
    connects: [], total: 0, cookieBack: 0, unknownClient: 0, disconnect: null,
  };
  window.chatState = state;
  let stopped = false;

  const $ = (id) => document.getElementById(id);

  // The parent's origin, when the browser tells it: the report then reaches only the page that embeds us.
  function parentOrigin() {
    if (location.ancestorOrigins && location.ancestorOrigins.length > 0) return location.ancestorOrigins[0];
    if (document.referrer) return new URL(document.referrer).origin;
    return '';
  }

  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'include',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify([body]),
    });
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    const reply = await res.json();
    reply.servedBy = res.headers.get('X-Chat-Node') || '';
    return reply;
  }

  function line(text, ok) {
    const li = document.createElement('li');
    li.className = ok ? 'ok' : 'bad';
    li.textContent = text;
    const log = $('log');
    log.appendChild(li);
    while (log.children.length > keepLast) log.removeChild(log.firstChild);
    li.scrollIntoView({ block: 'nearest' });
  }

  function report() {
    const healthy = !state.error && state.total > 0 && state.cookieBack === state.total && state.unknownClient === 0;
    $('dot').className = 'dot ' + (state.error ? 'bad' : healthy ? 'ok' : state.total ? 'bad' : '');
    $('summary').textContent = state.error ? state.error
      : state.node ? `node ${state.node} · cookie back ${state.cookieBack}/${state.total}` : 'connecting…';
    // The top-level page reports to itself, so that whoever watches the page (the browser tests) sees the same
    // reports whether the chat is embedded or opened directly.
    if (window.parent === window) {
      window.postMessage({ type: 'chips-demo-chat', state }, location.origin);
    } else {
      const origin = embedded ? parentOrigin() : '';
      if (origin) window.parent.postMessage({ type: 'chips-demo-chat', state }, origin);
    }
  }

  async function handshake() {
    const hs = await post('cometd/handshake', { channel: '/meta/handshake', version: '1.0' });
    state.clientId = hs.clientId;
    state.node = hs.node;
    state.handshakes++;
    state.newBrowser = hs.newBrowser;
    line(`handshake → ${hs.node}${hs.newBrowser ? ' · BAYEUX_BROWSER set' : ' · BAYEUX_BROWSER kept'}`, true);
  }

  async function connect() {
    const c = await post('cometd/connect', { channel: '/meta/connect', clientId: state.clientId });
    state.total++;
    if (c.sawBayeuxBrowser) state.cookieBack++;
    if (!c.successful) state.unknownClient++;
    state.connects.push({ node: c.node, servedBy: c.servedBy, successful: c.successful, error: c.error || '',
      sawBayeuxBrowser: c.sawBayeuxBrowser, cookieNames: c.cookieNames });
    if (state.connects.length > keepLast) state.connects.shift();
    const cookie = c.sawBayeuxBrowser ? (c.successful ? 'cookie came back' : 'cookie ✓') : 'no cookie';
    // "402::Unknown client" reads as "Unknown client": the code means nothing to a person watching.
    const failure = c.successful ? '' : ' · ' + String(c.error).replace(/^\d+::/, '');
    line(`connect #${state.total} → ${c.node} · ${cookie}${failure}`,
      c.successful && c.sawBayeuxBrowser);
    report();
    return c;
  }

  async function disconnect() {
    stopped = true;
    const d = await post('cometd/disconnect', { channel: '/meta/disconnect', clientId: state.clientId });
    state.disconnect = { node: d.node, successful: d.successful, sawBayeuxBrowser: d.sawBayeuxBrowser };
    line(`disconnect → ${d.node} · BAYEUX_BROWSER deleted`, d.successful);
  }

  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function session() {
    await handshake();
    report();
    $('again').disabled = false;
    $('bye').disabled = false;
    if (wanted > 0) {
      for (let i = 0; i < wanted; i++) await connect();
      if (endWithDisconnect) await disconnect();
      return;
    }
    for (let i = 0; i < maxPolls && !stopped; i++) {
      const started = Date.now();
      const c = await connect();
      // A CometD client answers "unknown client" with a new handshake: that is what a lost affinity costs.
      if (!c.successful && !stopped) await handshake();
      // Pace the loop when the server does not hold the poll.
      const spent = Date.now() - started;
      if (spent < 1000) await pause(1000 - spent);
    }
  }

  function fail(err) {
    state.error = String(err && err.message ? err.message : err);
    line(state.error, false);
  }

  $('again').addEventListener('click', () => connect().catch(fail).finally(report));
  $('bye').addEventListener('click', () => disconnect().catch(fail).finally(report));

  session().catch(fail).finally(() => {
    state.done = true;
    report();
  });
})();
