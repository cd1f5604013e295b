#!/usr/bin/env node
// A misbehaving MCP server for Steward's tests: it completes the handshake
// and lists one tool, `wait`, then never answers a call of it (or, with the
// argument `list`, never answers tools/list, so it never finishes starting).
// Plain Node, no dependencies: newline-delimited JSON-RPC on stdin/stdout.
"use strict";
const readline = require("node:readline");

const hangOnList = process.argv[2] === "list";
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

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
        serverInfo: { name: "hang", version: "1.0.0" },
      },
    });
  } else if (method === "tools/list") {
    if (hangOnList) return;
    send({
      jsonrpc: "2.0",
      id,
      result: {
        tools: [
          {
            name: "wait",
            description: "Never answers.",
            inputSchema: { type: "object", properties: {} },
            annotations: { readOnlyHint: true },
          },
        ],
      },
    });
  } else if (method === "ping") {
    send({ jsonrpc: "2.0", id, result: {} });
  }
  // tools/call and everything else: no answer, ever.
});
