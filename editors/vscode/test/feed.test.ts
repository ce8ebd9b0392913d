// The feed against real processes: fake `tokline` executables written by the test.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Feed } from "../src/core/feed";
import { Snapshot } from "../src/core/snapshot";

const SNAP = JSON.stringify({ today: { cost_usd: 1.5, total_tokens: 10, unpriced: false }, week: { cost_usd: 2, total_tokens: 20, unpriced: false }, month: { cost_usd: 3, total_tokens: 30, unpriced: false }, block: null, quota: [] });

function fake(script: string): string {
  const dir = mkdtempSync(join(tmpdir(), "tokline-vscode-"));
  const path = join(dir, "tokline");
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

function collect(binary: string, wanted: number): Promise<{ snaps: Snapshot[]; problems: string[]; feed: Feed }> {
  return new Promise((resolve, reject) => {
    const snaps: Snapshot[] = [];
    const problems: string[] = [];
    const feed = new Feed({
      binary,
      pollSeconds: 2,
      onSnapshot: (snap) => {
        snaps.push(snap);
        if (snaps.length >= wanted) {
          resolve({ snaps, problems, feed });
        }
      },
      onProblem: (message) => {
        problems.push(message);
        resolve({ snaps, problems, feed });
      },
    });
    feed.start();
    setTimeout(() => reject(new Error("timed out")), 8000).unref();
  });
}

test("reads JSON lines from tokline watch, across chunk boundaries", async () => {
  const half = SNAP.length >> 1;
  const binary = fake(`printf '%s' '${SNAP.slice(0, half)}'; sleep 0.2; printf '%s\\n%s\\n' '${SNAP.slice(half)}' '${SNAP}'; sleep 5`);
  const { snaps, feed } = await collect(binary, 2);
  feed.stop();
  assert.equal(snaps.length, 2);
  assert.equal(snaps[0].today.cost_usd, 1.5);
  assert.equal(feed.polling, false);
});

test("falls back to polling tokline status --json", async () => {
  const binary = fake(`if [ "$1" = watch ]; then echo 'no such command' >&2; exit 2; fi; echo '${SNAP}'`);
  const { snaps, feed } = await collect(binary, 1);
  const polling = feed.polling;
  feed.stop();
  assert.equal(snaps[0].month.cost_usd, 3);
  assert.equal(polling, true);
});

test("a missing binary is one clear message", async () => {
  const { problems, feed } = await collect("/nonexistent/tokline", 1);
  feed.stop();
  assert.equal(problems.length, 1);
  assert.match(problems[0], /was not found/);
});

test("the watch is started with the template and thresholds", () => {
  const feed = new Feed({ binary: "tokline", template: "{today.cost}", warn: 70, critical: 90, pollSeconds: 2, onSnapshot: () => undefined, onProblem: () => undefined });
  assert.deepEqual(feed.watchArgs(), ["watch", "--json", "--format", "{today.cost}", "--warn", "70", "--critical", "90"]);
  assert.deepEqual(feed.statusArgs(), ["status", "--json", "--format", "{today.cost}"]);
  const plain = new Feed({ binary: "tokline", pollSeconds: 2, onSnapshot: () => undefined, onProblem: () => undefined });
  assert.deepEqual(plain.watchArgs(), ["watch", "--json"]);
});
