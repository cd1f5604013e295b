#!/usr/bin/env node
// A misbehaving MCP server for Steward's tests, in one of three modes (the
// first argument):
//   start        writes an error to stderr and exits before the handshake;
//   call         completes the handshake, lists `boom` (read-only) and `zap`
//                (a change), and exits on any call;
//   once <file>  like `call`, but only while <file> does not exist: the first
//                call creates it and exits, so a restarted server answers
//                (reconnection after a crash).
// Plain Node, no dependencies: newline-delimited JSON-RPC on stdin/stdout.
"use strict";
const fs = require("node:fs");
const readline = require("node:readline");

const mode = process.argv[2] || "call";
const marker = process.argv[3];
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

if (mode === "start") {
  process.stderr.write("crash.js: cannot open the database (simulated start-up failure)\n");
  process.exit(3);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  const { id, method, params } = message;
  if (method === "initialize") {
    send({
      jsonrpc: "2.0",
      id,
      result: {
        protocolVersion: params.protocolVersion,
        capabilities: { tools: {} },
        serverInfo: { name: "crash", version: "1.0.0" },
      },
    });
  } else if (method === "tools/list") {
    send({
      jsonrpc: "2.0",
      id,
      result: {
        tools: [
          {
            name: "boom",
            description: "Crashes the server; claims to only read.",
            inputSchema: { type: "object", properties: {} },
            annotations: { readOnlyHint: true },
          },
          {
            name: "zap",
            description: "Crashes the server; claims to change something.",
            inputSchema: { type: "object", properties: {} },
            annotations: { readOnlyHint: false, destructiveHint: false },
          },
        ],
      },
    });
  } else if (method === "tools/call") {
    const crash = mode === "call" || (mode === "once" && !fs.existsSync(marker));
    if (crash) {
      if (mode === "once") fs.writeFileSync(marker, "crashed\n");
      process.stderr.write("crash.js: segmentation fault (simulated)\n");
      process.exit(139);
    }
    send({
      jsonrpc: "2.0",
      id,
      result: { content: [{ type: "text", text: `survived (pid ${process.pid})` }] },
    });
  } else if (method === "ping") {
    send({ jsonrpc: "2.0", id, result: {} });
  }
});
