// bench/fanout peer: a broadcast server on Node's http module and `ws` 8.
//
//   PORT=8080 node server.js
//
// Listens on 127.0.0.1:PORT. A WebSocket upgrade on any path makes a
// subscriber; `POST /broadcast` sends the request body as one text frame to
// every open subscriber (ws.send on each, the usual way to fan out with
// `ws`), then answers 200 with an empty body on the same keep-alive
// connection. Anything else is 404.
'use strict';

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number.parseInt(process.env.PORT || '8080', 10);

const server = http.createServer();
const subscribers = new WebSocketServer({ server });

subscribers.on('connection', (socket) => {
  // A client that goes away mid-write must not take the process down.
  socket.on('error', () => {});
});

server.on('request', (req, res) => {
  if (req.method !== 'POST' || req.url !== '/broadcast') {
    res.writeHead(404, { 'Content-Length': '0' }).end();
    return;
  }
  const parts = [];
  req.on('data', (part) => parts.push(part));
  req.on('end', () => {
    const text = Buffer.concat(parts).toString('utf8');
    for (const socket of subscribers.clients) {
      if (socket.readyState === WebSocket.OPEN) socket.send(text);
    }
    res.writeHead(200, { 'Content-Length': '0' }).end();
  });
});

// The trigger keeps one keep-alive connection through phases where it is
// idle (connecting 10,000 clients takes a while): Node's 5 s default would
// close it in between.
server.keepAliveTimeout = 10 * 60 * 1000;
server.headersTimeout = server.keepAliveTimeout + 1000;

server.listen(port, '127.0.0.1', () => {
  console.error(`node-ws (ws ${require('ws/package.json').version}) on 127.0.0.1:${port}`);
});
