"""The Neovim plugin in a real `nvim --headless`, fed by a real `tokline watch`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokline import cli
from tokline.commands.demo import install_sample

PLUGIN = Path(__file__).resolve().parents[1] / "editors" / "nvim"

# A stand-in for lualine's component base (lualine is not installed here): the same
# extend/init/update_status protocol lualine uses.
LUALINE_STUB = """
local Component = {}
Component.__index = Component
function Component:extend()
  local cls = setmetatable({}, { __index = self })
  cls.__index = cls
  cls.super = self
  return cls
end
function Component:init(options) self.options = options end
function Component:new(options)
  local obj = setmetatable({}, self)
  obj:init(options or {})
  return obj
end
return Component
"""


def nvim() -> str:
    path = shutil.which("nvim")
    if path is None:
        pytest.skip("nvim is not installed (.ci/run installs it)")
    return path


def run_lua(tmp_path: Path, body: str, timeout: float = 60) -> tuple[dict[str, object], str]:
    stub = tmp_path / "stub" / "lua" / "lualine"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "component.lua").write_text(LUALINE_STUB)
    out = tmp_path / "out.json"
    script = tmp_path / "test.lua"
    cmd = json.dumps([sys.executable, "-m", "tokline", "watch", "--json"])
    script.write_text(f"""
vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN))})
vim.opt.runtimepath:prepend({json.dumps(str(tmp_path / "stub"))})
vim.g.tokline_cmd = vim.fn.json_decode({json.dumps(cmd)})
local result = {{}}
local function finish()
  local f = io.open({json.dumps(str(out))}, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
end
{body}
finish()
""")
    proc = subprocess.run([nvim(), "--headless", "-u", "NONE", "-i", "NONE", "-c",
                           f"luafile {script}", "-c", "qa!"], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TERM": "dumb"})
    assert out.exists(), proc.stdout + proc.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result, proc.stdout + proc.stderr


@pytest.fixture
def sample(home: Path) -> Path:
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    return home


def test_feed_fills_the_cache_and_fires_the_event(sample: Path, tmp_path: Path) -> None:
    result, log = run_lua(tmp_path, """
vim.cmd("runtime plugin/tokline.lua")
local fired = 0
vim.api.nvim_create_autocmd("User", { pattern = "ToklineUpdate", callback = function()
  fired = fired + 1 end })
local tokline = require("tokline")
tokline.start()
vim.wait(20000, function() return vim.g.tokline_status ~= nil end, 50)
result.status = vim.g.tokline_status
result.numbers = vim.g.tokline
result.fired = fired
result.pid = tokline.state.job.pid
local component = require("lualine.components.tokline"):new({})
result.lualine = component:update_status()
result.hand = vim.api.nvim_eval("v:lua.require'tokline'.status()")
-- redraws read the cache: the only child of Neovim stays the one feed
vim.o.statusline = "%{v:lua.require'tokline'.status()}"
vim.o.laststatus = 2
local before = #vim.api.nvim_get_proc_children(vim.fn.getpid())
for _ = 1, 1000 do
  vim.cmd("redrawstatus!")
end
result.children = { before, #vim.api.nvim_get_proc_children(vim.fn.getpid()) }
""")
    status = str(result["status"])
    assert status.startswith("$") and " today" in status and "5h $" in status, log
    assert result["lualine"] == status == result["hand"]
    numbers = result["numbers"]
    assert isinstance(numbers, dict) and str(numbers["today.cost"]).startswith("$")
    assert int(str(result["fired"])) >= 1
    assert result["children"] == [1, 1]
    # the job ends with Neovim (VimLeavePre stops it; watch exits on stdin closing too)
    pid = int(str(result["pid"]))
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("tokline watch outlived Neovim")


def test_update_visible_after_a_log_append(sample: Path, tmp_path: Path) -> None:
    log_file = next((sample / ".claude").rglob("*.jsonl"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    line = json.dumps({"type": "assistant", "timestamp": stamp, "requestId": "rq-nvim",
                       "sessionId": "s", "message": {"id": "m-nvim",
                                                     "model": "claude-opus-4-5-20251101",
                                                     "usage": {"input_tokens": 400000,
                                                               "output_tokens": 100000}}})
    result, log = run_lua(tmp_path, f"""
local tokline = require("tokline")
tokline.start()
vim.wait(20000, function() return vim.g.tokline_status ~= nil end, 50)
result.before = vim.g.tokline_status
local f = io.open({json.dumps(str(log_file))}, "a")
f:write({json.dumps(line + chr(10))})
f:close()
local t0 = vim.loop.hrtime()
vim.wait(5000, function() return vim.g.tokline_status ~= result.before end, 20)
result.after = vim.g.tokline_status
result.ms = (vim.loop.hrtime() - t0) / 1e6
tokline.stop()
""")
    assert result["after"] != result["before"], log
    assert float(str(result["ms"])) < 1000


def test_checkhealth_reports(sample: Path, tmp_path: Path) -> None:
    result, log = run_lua(tmp_path, """
vim.cmd("runtime plugin/tokline.lua")
local tokline = require("tokline")
tokline.start()
vim.wait(20000, function() return vim.g.tokline_status ~= nil end, 50)
vim.cmd("checkhealth tokline")
result.health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\\n")
tokline.stop()
""")
    health = str(result["health"])
    assert "tokline" in health and "found" in health and "feed running" in health, log
    assert "snapshot received" in health


def test_missing_binary_is_one_clear_message(home: Path, tmp_path: Path) -> None:
    result, _ = run_lua(tmp_path, """
vim.g.tokline_cmd = { "tokline-does-not-exist", "watch", "--json" }
local tokline = require("tokline")
result.job = tokline.start()
result.error = tokline.state.error
result.status = tokline.status()
""")
    assert result.get("job") is None and "not found" in str(result["error"])
    assert result["status"] == ""


def test_the_line_is_the_clis(tmp_path: Path, home: Path) -> None:
    """The plugin shows what `tokline watch` rendered; it formats nothing itself."""
    result, _ = run_lua(tmp_path, """
local tokline = require("tokline")
local snap = { today = { cost_usd = 4.214 }, rendered = { text = "$4.21+? today (stale 2h)",
  level = vim.NIL, stale = "stale 2h", fields = { ["today.cost"] = "$4.21+?" } } }
tokline.update(snap)
result.line = vim.g.tokline_status
result.today = vim.g.tokline["today.cost"]
tokline.setup({ format = function(_, fields) return "spent " .. fields["today.cost"] end })
tokline.update(snap)
result.own = vim.g.tokline_status
tokline.update({ today = {} })
result.old = vim.g.tokline_status
result.error = tokline.state.error
""")
    assert result["line"] == "$4.21+? today (stale 2h)" and result["today"] == "$4.21+?"
    assert result["own"] == "spent $4.21+?"
    assert result["old"] == "" and "pip install -U tokline" in str(result["error"])


def test_template_option_renders_through_the_cli(sample: Path, tmp_path: Path) -> None:
    result, log = run_lua(tmp_path, """
local tokline = require("tokline")
tokline.setup({ template = "spent {today.cost}[, 7d {quota.7d}]" })
tokline.start()
vim.wait(20000, function() return vim.g.tokline_status ~= nil end, 50)
result.status = vim.g.tokline_status
tokline.stop()
""")
    expected = subprocess.run([sys.executable, "-m", "tokline", "status", "--target", "plain",
                               "--format", "spent {today.cost}[, 7d {quota.7d}]"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert result["status"] == expected and expected.startswith("spent $"), log
