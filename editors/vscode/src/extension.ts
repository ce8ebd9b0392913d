// Thin: create the status bar item, wire settings and the feed; logic lives in core/.
import * as vscode from "vscode";
import { execFile } from "child_process";
import { Feed } from "./core/feed";
import { cliTemplate, level, statusText, tooltip } from "./core/format";
import { Snapshot } from "./core/snapshot";

const DEFAULT_FORMAT = "$(pulse) {today.cost}[ · 5h {quota.5h}][ · 7d {quota.7d}]";
// settings the running `tokline watch` was started with: a change restarts it
const FEED_SETTINGS = ["binaryPath", "refreshSeconds", "format", "warnPercent", "errorPercent"];

export function activate(context: vscode.ExtensionContext): void {
  const item = vscode.window.createStatusBarItem("tokline.status", vscode.StatusBarAlignment.Right, 100);
  item.name = "tokline";
  item.command = "tokline.showReport";
  item.text = "$(pulse) tokline";
  item.show();
  let latest: Snapshot | undefined;
  let feed: Feed | undefined;

  const settings = () => vscode.workspace.getConfiguration("tokline");
  // The text, level and fields come rendered by `tokline watch`, which sends a new line
  // when they change, the block's time left ticking down included: nothing to compute here.
  const draw = () => {
    if (!latest) {
      return;
    }
    const config = settings();
    item.text = statusText(latest) ?? "$(pulse) tokline";
    const tip = new vscode.MarkdownString(tooltip(latest, config.get<string[]>("sources", [])));
    tip.supportThemeIcons = true;
    item.tooltip = tip;
    const state = level(latest);
    item.backgroundColor =
      state === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : state === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  };
  const start = () => {
    feed?.stop();
    feed = new Feed({
      binary: settings().get<string>("binaryPath", "tokline"),
      template: cliTemplate(settings().get<string>("format", DEFAULT_FORMAT)),
      warn: settings().get<number>("warnPercent", 80),
      critical: settings().get<number>("errorPercent", 95),
      pollSeconds: settings().get<number>("refreshSeconds", 10),
      onSnapshot: (snap) => {
        latest = snap;
        draw();
      },
      onProblem: (message) => {
        item.text = "$(warning) tokline";
        item.tooltip = message;
        void vscode.window.showWarningMessage(message);
      },
    });
    feed.start();
  };

  context.subscriptions.push(
    item,
    { dispose: () => feed?.stop() },
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (FEED_SETTINGS.some((name) => event.affectsConfiguration(`tokline.${name}`))) {
        start();
      } else if (event.affectsConfiguration("tokline")) {
        draw();
      }
    }),
    vscode.commands.registerCommand("tokline.restart", start),
    vscode.commands.registerCommand("tokline.showReport", () => showReport(settings().get<string>("binaryPath", "tokline"))),
  );
  start();
}

function showReport(binary: string): void {
  execFile(binary, ["daily", "--json", "--offline"], { timeout: 15_000 }, (error, stdout) => {
    if (error) {
      void vscode.window.showWarningMessage(`tokline daily failed: ${error.message.split("\n")[0]}`);
      return;
    }
    const report = JSON.parse(stdout) as {
      rows: { period: string; cost_usd: number; unpriced: boolean; total_tokens: number }[];
    };
    const picks = report.rows
      .slice()
      .reverse()
      .map((row) => ({
        label: row.period,
        description: `$${row.cost_usd.toFixed(2)}${row.unpriced ? "+?" : ""}`,
        detail: `${row.total_tokens.toLocaleString("en-US")} tokens`,
      }));
    void vscode.window.showQuickPick(picks, { title: "tokline: cost per day" });
  });
}

export function deactivate(): void {
  // Disposables registered in activate() stop the feed.
}
