// The express SSE hub "tutorial style": an array of open responses, and on
// publish a `data: ...\n\n` written to each one subscribed to the topic.
//
//   GET  /events?topic=T   stream
//   POST /publish?topic=T  the body is the event data
//
// Usage: node server.js PORT   (listens on 127.0.0.1, backlog 65535)
'use strict';
const express = require('express');

const app = express();
let clients = [];

app.get('/events', (req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  res.write(': connected\n\n');
  const client = { topic: req.query.topic, res };
  clients.push(client);
  req.on('close', () => {
    clients = clients.filter((c) => c !== client);
  });
});

app.post('/publish', express.text({ type: '*/*', limit: '1mb' }), (req, res) => {
  const topic = req.query.topic;
  const data = typeof req.body === 'string' ? req.body : '';
  for (const c of clients) {
    if (c.topic === topic) c.res.write(`data: ${data}\n\n`);
  }
  res.send('ok');
});

const port = Number(process.argv[2] || 3002);
app.listen(port, '127.0.0.1', 65535, () => {
  console.error(`express hub listening on 127.0.0.1:${port}`);
});
