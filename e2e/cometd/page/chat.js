// The chat in the shop's iframe: the CometD JavaScript client, long-polling only, against the Bayeux endpoint of
// this page's origin. It handshakes, subscribes to a room, publishes one message after every successful connect
// and counts what comes back. It reports its state to the page that embeds it after every change.
//
// A session is steady once it has `connects` successful connects and as many of its own messages back. The page
// gives up (lost) after `handshakes` handshakes without a steady session: a client whose every connect is answered
// 402::session_unknown would otherwise re-handshake forever.
import {CometD, LongPollingTransport} from './lib/cometd/cometd.js';

const params = new URLSearchParams(location.search);
const wanted = Math.max(1, parseInt(params.get('connects') || '4', 10) || 4);
const maxHandshakes = 4;
const room = '/chat/room';

const state = {
    handshakes: 0, // successful handshakes
    unknownSession: 0, // replies 402::session_unknown, on any channel
    failures: [], // every unsuccessful reply: channel, error, node, and the node of the session's handshake
    sessions: [], // one per successful handshake: clientId, node, connects, roundTrips, nodes, steady
    lost: false,
};
let sinceSteady = 0; // handshakes since the last steady session

const cometd = new CometD();
cometd.unregisterTransports();
cometd.registerTransport('long-polling', new LongPollingTransport());
// The client's default back-off (1 s more per failure) only slows the failing scenarios down.
cometd.configure({url: new URL('cometd', location.href).href, backoffIncrement: 50, maxBackoff: 500, logLevel: 'warn'});

const current = () => state.sessions[state.sessions.length - 1];
const nodeOf = (message) => (message.ext && message.ext.node) || '';

function report() {
    const s = current();
    document.getElementById('summary').textContent = state.lost ? `lost after ${state.handshakes} handshakes`
        : s ? `node ${s.node}: ${s.connects} connects, ${s.roundTrips} messages back` : 'connecting…';
    if (window.parent !== window) {
        window.parent.postMessage({type: 'chips-e2e-cometd', state}, '*');
    }
}

function log(text) {
    const li = document.createElement('li');
    li.textContent = text;
    document.getElementById('log').appendChild(li);
}

function failed(message) {
    if (message.successful) return;
    const error = String(message.error || (message.failure && message.failure.reason) || 'transport failure');
    if (error.startsWith('402::')) state.unknownSession++;
    const s = current();
    state.failures.push({channel: message.channel, error, node: nodeOf(message), sessionNode: s ? s.node : ''});
    log(`${message.channel} failed on ${nodeOf(message) || '?'}: ${error}`);
    report();
}

cometd.addListener('/meta/handshake', (message) => {
    if (!message.successful) {
        failed(message);
        return;
    }
    state.handshakes++;
    sinceSteady++;
    state.sessions.push({clientId: message.clientId, node: nodeOf(message), connects: 0, roundTrips: 0,
        nodes: [nodeOf(message)], steady: false});
    log(`handshake on ${nodeOf(message)}`);
    if (sinceSteady >= maxHandshakes) {
        state.lost = true;
        cometd.disconnect();
        report();
        return;
    }
    const clientId = message.clientId;
    cometd.subscribe(room, (delivered) => {
        const s = current();
        if (s && delivered.data && delivered.data.clientId === s.clientId && s.clientId === clientId) {
            s.roundTrips++;
            note(s, nodeOf(delivered));
            check(s);
        }
    }, failed);
    report();
});

cometd.addListener('/meta/connect', (message) => {
    const s = current();
    if (!message.successful || !s || cometd.getClientId() !== s.clientId) {
        failed(message);
        return;
    }
    s.connects++;
    note(s, nodeOf(message));
    cometd.publish(room, {clientId: s.clientId, seq: s.connects}, failed);
    check(s);
});



function note(s, node) {
    if (node && !s.nodes.includes(node)) s.nodes.push(node);
}

function check(s) {
    if (!s.steady && s.connects >= wanted && s.roundTrips >= wanted) {
        s.steady = true;
        sinceSteady = 0;
        log(`steady on ${s.node}`);
    }
    report();
}

cometd.handshake();
