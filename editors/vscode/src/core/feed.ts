// Keeps the latest snapshot: one long-running `tokline watch --json`, or polling
// `tokline status --json` with a timeout when the watch cannot run.  No `vscode` here.
import { ChildProcess, execFile, spawn } from "child_process";
import { parseSnapshot, Snapshot } from "./snapshot";

export interface FeedOptions {
  binary: string;
  template?: string; // a CLI template (see cliTemplate); the config's when absent
  warn?: number;
  critical?: number;
  pollSeconds: number;
  onSnapshot: (snap: Snapshot) => void;
  onProblem: (message: string) => void;
}

export class Feed {
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private buffer = "";
  private stopped = false;
  private reported = false;

  constructor(private readonly options: FeedOptions) {}

  start(): void {
    this.stopped = false;
    const child = spawn(this.options.binary, this.watchArgs(), { stdio: ["pipe", "pipe", "ignore"] });
    this.child = child;
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => this.take(chunk));
    child.on("error", (error: NodeJS.ErrnoException) => {
      this.child = undefined;
      if (error.code === "ENOENT") {
        this.problem(`tokline: \`${this.options.binary}\` was not found. Install it (pip install tokline) or set "tokline.binaryPath".`);
        return;
      }
      this.poll();
    });
    child.on("exit", (code) => {
      this.child = undefined;
      if (!this.stopped && code !== 0 && code !== null) {
        this.poll(); // a tokline without `watch`, or one that failed: poll instead
      }
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.child) {
      this.child.stdin?.end(); // `tokline watch` exits when its stdin closes
      this.child.kill("SIGTERM");
      this.child = undefined;
    }
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  watchArgs(): string[] {
    const { template, warn, critical } = this.options;
    return [
      "watch",
      "--json",
      ...(template ? ["--format", template] : []),
      ...(warn !== undefined ? ["--warn", String(warn)] : []),
      ...(critical !== undefined ? ["--critical", String(critical)] : []),
    ];
  }

  statusArgs(): string[] {
    return ["status", "--json", ...(this.options.template ? ["--format", this.options.template] : [])];
  }

  get polling(): boolean {
    return this.timer !== undefined;
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let newline = this.buffer.indexOf("\n");
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      const snap = parseSnapshot(line);
      if (snap) {
        this.options.onSnapshot(snap);
      }
      newline = this.buffer.indexOf("\n");
    }
  }

  private poll(): void {
    if (this.stopped || this.timer) {
      return;
    }
    const once = () =>
      execFile(this.options.binary, this.statusArgs(), { timeout: 5000 }, (error, stdout) => {
        if (error) {
          this.problem(`tokline: \`${this.options.binary} status --json\` failed: ${error.message.split("\n")[0]}`);
          return;
        }
        const snap = parseSnapshot(stdout.trim());
        if (snap) {
          this.options.onSnapshot(snap);
        }
      });
    once();
    this.timer = setInterval(once, Math.max(2, this.options.pollSeconds) * 1000);
  }

  private problem(message: string): void {
    if (!this.reported) {
      this.reported = true; // one clear message, then quiet
      this.options.onProblem(message);
    }
  }
}
