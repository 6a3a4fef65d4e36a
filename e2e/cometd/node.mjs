// One chat node for the browser tests: the CometD project's own Node.js server (cometd-nodejs-server) with its
// default BAYEUX_BROWSER cookie, plus the chat page and the CometD JavaScript client (cometd), served from the same
// origin as the Bayeux endpoint, as a chat vendor's widget is.
//
// Usage: node node.mjs <name>
// It listens on 127.0.0.1 on a free port and writes, one JSON object a line on stdout:
//   {"listening":"http://127.0.0.1:<port>"}                          once, when it accepts connections;
//   {"node":…,"channel":…,"successful":…,"error":…,"clientId":…}     for every Bayeux reply it sends.
// It stops on SIGTERM or when stdin closes (so a test that dies takes its nodes with it).
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import cometd from 'cometd-nodejs-server';

const name = process.argv[2];
if (!name) {
    console.error('cometd node: usage: node node.mjs <name>');
    process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));

// Long polls are held for 300 ms: connects keep cycling several times a second, so a test sees many of them.
// Everything else is the server's default, the BAYEUX_BROWSER cookie included (`BAYEUX_BROWSER=<id>; HttpOnly`).
const bayeux = cometd.createCometDServer({timeout: 300});

// Every reply and every delivered message says which node sent it, for the page; every reply is also written to
// stdout, for the test.
bayeux.addExtension({
    outgoing(server, sender, session, message, callback) {
        message.ext = {...message.ext, node: name};
        if (message.channel.startsWith('/meta/')) {
            console.log(JSON.stringify({
                node: name, channel: message.channel, successful: message.successful === true,
                error: message.error || '', clientId: message.clientId || '',
            }));
        }
        callback(undefined, true);
    },
});

// The files a browser may fetch besides the Bayeux endpoint: the page, its script, and the client library.
const files = new Map([
    ['/widget', ['page/chat.html', 'text/html; charset=utf-8']],
    ['/chat.js', ['page/chat.js', 'text/javascript; charset=utf-8']],
]);
const library = '/lib/cometd/';

async function serveFile(res, file, type) {
    try {
        const body = await fs.readFile(path.join(here, file));
        res.writeHead(200, {'Content-Type': type, 'Cache-Control': 'no-store'});
        res.end(body);
    } catch (err) {
        res.writeHead(404, {'Content-Type': 'text/plain'});
        res.end(`cometd node: ${file}: ${err.code || err}\n`);
    }
}

const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://node');
    if (url.pathname === '/cometd' || url.pathname.startsWith('/cometd/')) {
        bayeux.handle(req, res);
        return;
    }
    const file = files.get(url.pathname);
    if (file) {
        serveFile(res, ...file);
        return;
    }
    const lib = url.pathname.startsWith(library) ? url.pathname.slice(library.length) : '';
    if (/^[A-Za-z0-9]+\.js$/.test(lib)) {
        serveFile(res, path.join('node_modules', 'cometd', lib), 'text/javascript; charset=utf-8');
        return;
    }
    res.writeHead(404, {'Content-Type': 'text/plain'});
    res.end('cometd node: not found\n');
});

// stop ends held long polls and open connections, and exits once the listener is closed: a session's expiry timer
// would otherwise keep the process alive for its maxInterval.
function stop() {
    bayeux.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({listening: `http://127.0.0.1:${server.address().port}`}));
});
