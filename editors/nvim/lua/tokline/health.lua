-- :checkhealth tokline
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local err = health.error or health.report_error

function M.check()
  start("tokline")
  local tokline = require("tokline")
  local cmd = vim.g.tokline_cmd or tokline.config.cmd
  local binary = cmd[1]
  if vim.fn.executable(binary) ~= 1 then
    err("`" .. binary .. "` not found on PATH")
    return
  end
  ok("found " .. vim.fn.exepath(binary))
  -- the command without its "watch --json" tail runs the other subcommands
  local base = vim.list_slice(cmd, 1, #cmd - 2)
  local out = vim.fn.systemlist(vim.list_extend(vim.deepcopy(base), { "--version" }))
  if vim.v.shell_error == 0 and out[1] then
    ok(out[1])
  else
    warn("could not read the version: " .. table.concat(out, " "))
  end
  local doctor = vim.fn.systemlist(vim.list_extend(vim.deepcopy(base), { "doctor" }))
  for _, line in ipairs(doctor) do
    if line:match("ERROR") or line:match("^problem") then
      warn(line)
    end
  end
  if tokline.state.job then
    ok("feed running (pid " .. tostring(tokline.state.job.pid) .. ")")
  else
    warn("feed not running: :ToklineStart")
  end
  if tokline.state.updated then
    ok(string.format("snapshot received %ds ago", os.time() - tokline.state.updated))
    local rendered = tokline.state.snapshot and tokline.state.snapshot.rendered
    local stale = type(rendered) == "table" and rendered.stale or ""
    if type(stale) == "string" and stale ~= "" then
      warn("the status is " .. stale .. " (no refresh has made it current)")
    end
  else
    warn("no snapshot received yet")
  end
  if tokline.state.error then
    err(tokline.state.error)
  end
end

return M
