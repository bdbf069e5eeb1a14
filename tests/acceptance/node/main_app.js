// The main app's side, in Node.js with the `pg` package: raise a notification in its own
// transaction (rolled back, then committed) and request exports, as the README shows.
// Usage: node main_app.js '<connection config as JSON>' <user id>
"use strict";
const { Client } = require("pg");

async function main() {
  const client = new Client(JSON.parse(process.argv[2]));
  const userId = process.argv[3];
  await client.connect();
  const out = {};
  try {
    await client.query("BEGIN");
    const dropped = await client.query(
      "SELECT planner_notify($1, $2) AS id",
      [userId, JSON.stringify({ title: "never sent", body: "rolled back" })],
    );
    await client.query("ROLLBACK");
    out.rolledBack = dropped.rows[0].id;

    await client.query("BEGIN");
    const sent = await client.query(
      "SELECT planner_notify($1, $2, urgency => 'high', ttl => 60, dedupe_key => 'hello') AS id",
      [userId, JSON.stringify({ title: "Hello from Node", body: "é ✓" })],
    );
    await client.query("COMMIT");
    out.committedAt = Date.now() / 1000;
    out.committed = sent.rows[0].id;

    const exported = await client.query("SELECT planner_request_export($1, 'json') AS id", [userId]);
    out.export = exported.rows[0].id;
    try {
      await client.query("SELECT planner_request_export($1, 'csv')", [userId]);
    } catch (error) {
      out.conflict = { code: error.code, message: error.message };
    }
    try {
      await client.query("SELECT planner_notify($1, $2, topic => 'not a topic')", [userId, "{}"]);
    } catch (error) {
      out.refused = { code: error.code, message: error.message };
    }
  } finally {
    await client.end();
  }
  console.log(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
