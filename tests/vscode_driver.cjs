// Drives the VS Code workbench that code-server serves, in a Chromium that
// tests/test_vscode_host.py started, over the DevTools protocol (playwright-core's
// connectOverCDP: no browser of playwright's own).
//
//   node vscode_driver.cjs PLAYWRIGHT_CORE_DIR CDP_WEBSOCKET_URL
//
// One JSON request a line on stdin, one JSON answer a line on stdout:
//   {"op": "open", "url": U, "timeout": MS}         load U, wait for the workbench
//   {"op": "item", "id": ID, "unlike": [T...], "timeout": MS}
//       wait for the status bar item ID to show a text not in `unlike`; answers its
//       `text` as the extension set it (codicons as `$(name)`) and its `kind` (the
//       background: "warning", "error" or null)
//   {"op": "click", "id": ID, "timeout": MS}         click the status bar item ID
//   {"op": "quickpick", "timeout": MS}               the quick pick shown: `title`, and
//       `rows` ({label, description}) as far as VS Code rendered them
//   {"op": "screenshot", "path": P}
//   {"op": "requests"}                              every URL the page asked for
//   {"op": "quit"}
// Answers carry "ok"; a failure says "error" and, for `item`, the last text seen.
"use strict";

const readline = require("readline");

const [playwrightDir, cdpUrl] = process.argv.slice(2);
const { chromium } = require(playwrightDir);

// The item's label as the extension wrote it: VS Code renders `$(name)` as
// <span class="codicon codicon-name">, and the text around it as text nodes.
function labelOf(id) {
  const item = document.getElementById(id);
  const label = item && item.querySelector(".statusbar-item-label");
  if (!label) {
    return null;
  }
  let text = "";
  for (const node of label.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      text += node.textContent;
    } else if (node.classList && node.classList.contains("codicon")) {
      const name = [...node.classList].find((c) => c.startsWith("codicon-") && !c.startsWith("codicon-modifier-"));
      text += name ? `$(${name.slice("codicon-".length)})` : "";
    } else {
      text += node.textContent;
    }
  }
  // extension.ts sets the warning or error background; VS Code marks the item's kind
  const kind = item.classList.contains("error-kind") ? "error" : item.classList.contains("warning-kind") ? "warning" : null;
  return { text: text.replace(/\u00a0/g, " "), kind };
}

async function main() {
  const browser = await chromium.connectOverCDP(cdpUrl, { timeout: 30_000 });
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize({ width: 1280, height: 800 });
  const requested = [];
  context.on("request", (request) => requested.push(request.url()));
  page.on("websocket", (socket) => requested.push(socket.url()));

  const ops = {
    async open({ url, timeout }) {
      const started = Date.now();
      await page.goto(url, { timeout });
      // The workbench builds itself after its websocket to the server is up; the status
      // bar exists only then.
      await page.waitForSelector(".monaco-workbench .part.statusbar", { timeout });
      return { ms: Date.now() - started };
    },
    async item({ id, unlike = [], timeout }) {
      const deadline = Date.now() + timeout;
      let last = null;
      while (Date.now() < deadline) {
        last = await page.evaluate(labelOf, id);
        if (last && !unlike.includes(last.text)) {
          return last;
        }
        await page.waitForTimeout(100);
      }
      throw Object.assign(new Error(`status bar item ${id} still shows ${JSON.stringify(last && last.text)}`), { last });
    },
    async click({ id, timeout }) {
      await page.click(`[id="${id}"] .statusbar-item-label`, { timeout });
      return {};
    },
    // The quick pick on screen: its title and the rows VS Code rendered.
    async quickpick({ timeout }) {
      const widget = page.locator(".quick-input-widget");
      await widget.locator(".monaco-list-row").first().waitFor({ state: "visible", timeout });
      return await widget.evaluate((el) => ({
        title: el.querySelector(".quick-input-title")?.textContent ?? null,
        rows: [...el.querySelectorAll(".monaco-list-row")].map((row) => ({
          label: row.querySelector(".label-name")?.textContent ?? null,
          description: row.querySelector(".label-description")?.textContent ?? null,
        })),
      }));
    },
    async screenshot({ path }) {
      await page.screenshot({ path });
      return { path };
    },
    async requests() {
      return { urls: requested.slice() };
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const request = JSON.parse(line);
    if (request.op === "quit") {
      break;
    }
    let answer;
    try {
      answer = { ok: true, ...(await ops[request.op](request)) };
    } catch (error) {
      answer = { ok: false, error: String(error && error.message), text: error.last ? error.last.text : null };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  // Disconnects only: the test ends Chromium and its process group itself.
  await browser.close().catch(() => {});
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack}\n`);
  process.exit(1);
});
