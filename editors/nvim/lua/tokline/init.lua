-- tokline for Neovim: one `tokline watch --json` job per editor feeds a cache that
-- statuslines read; nothing is spawned when a statusline is drawn.  The text and fields
-- come formatted by the CLI (each line's `rendered`), so they read as `tokline status`.
--   vim.g.tokline_status  the line ("$4.21 today · 5h $1.80 (2h13m left) · 7d 41%")
--   vim.g.tokline          the fields by template name ("today.cost", "block.left", …)
--   User ToklineUpdate     fired after each update
local system = require("tokline.system")

local M = {}

local defaults = {
  cmd = { "tokline", "watch", "--json" },
  template = nil, -- a tokline template for the line, or nil for the configured one
  format = nil, -- function(snapshot, fields) -> string, or nil for the rendered line
}

M.config = vim.deepcopy(defaults)
M.state = { job = nil, snapshot = nil, error = nil, updated = nil }

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if vim.g.tokline_cmd then
    M.config.cmd = vim.g.tokline_cmd
  end
end

local function fire()
  vim.api.nvim_exec_autocmds("User", { pattern = "ToklineUpdate", modeline = false })
end

function M.update(snapshot)
  M.state.snapshot = snapshot
  M.state.updated = os.time()
  local rendered = type(snapshot.rendered) == "table" and snapshot.rendered or {}
  local fields = type(rendered.fields) == "table" and rendered.fields or {}
  local text = type(rendered.text) == "string" and rendered.text or ""
  if rendered.text == nil then
    M.state.error = "tokline: this tokline renders no text for editors; pip install -U tokline"
  end
  local ok, line = pcall(function()
    if M.config.format then
      return M.config.format(snapshot, fields)
    end
    return text
  end)
  vim.g.tokline = fields
  vim.g.tokline_status = ok and line or text
  fire()
end

function M.on_line(line)
  local ok, snapshot = pcall(vim.fn.json_decode, line)
  if ok and type(snapshot) == "table" then
    vim.schedule(function()
      M.update(snapshot)
    end)
  end
end

function M.start()
  if M.state.job then
    return M.state.job
  end
  if vim.g.tokline_cmd then
    M.config.cmd = vim.g.tokline_cmd
  end
  local binary = M.config.cmd[1]
  if vim.fn.executable(binary) ~= 1 then
    M.state.error = "tokline: `" .. binary .. "` not found; install it (pip install tokline)"
      .. " or set the command with require('tokline').setup({ cmd = {...} })"
    vim.notify(M.state.error, vim.log.levels.WARN)
    return nil
  end
  local cmd = vim.deepcopy(M.config.cmd)
  if M.config.template then
    vim.list_extend(cmd, { "--format", M.config.template })
  end
  local job = system.spawn(cmd, M.on_line, function(code)
    M.state.job = nil
    if code ~= 0 and code ~= 143 then
      M.state.error = "tokline watch exited with code " .. code
    end
  end)
  if not job then
    M.state.error = "tokline: could not start " .. table.concat(M.config.cmd, " ")
    return nil
  end
  M.state.job = job
  M.state.error = nil
  vim.api.nvim_create_autocmd("VimLeavePre", {
    once = true,
    callback = function()
      M.stop()
    end,
  })
  return job
end

function M.stop()
  system.stop(M.state.job)
  M.state.job = nil
end

--- For hand-written statuslines: %{v:lua.require'tokline'.status()}
function M.status()
  return vim.g.tokline_status or ""
end

return M
