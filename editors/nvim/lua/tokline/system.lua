-- Spawning seam: one long-running job with line-buffered stdout; vim.system where
-- Neovim has it (0.10+), jobstart on older ones (0.7+).  Returns a handle for stop().
local M = {}

local function lines_of(on_line)
  local pending = ""
  return function(chunk)
    pending = pending .. chunk
    local start = 1
    while true do
      local nl = pending:find("\n", start, true)
      if not nl then
        break
      end
      local line = pending:sub(start, nl - 1)
      if line ~= "" then
        on_line(line)
      end
      start = nl + 1
    end
    pending = pending:sub(start)
  end
end

function M.spawn(cmd, on_line, on_exit)
  if vim.system then
    local feed = lines_of(on_line)
    local ok, obj = pcall(vim.system, cmd, {
      stdin = true, -- `tokline watch` exits when this pipe closes
      stdout = function(_, data)
        if data then
          feed(data)
        end
      end,
    }, function(result)
      if on_exit then
        on_exit(result.code)
      end
    end)
    return ok and { system = obj, pid = obj.pid } or nil
  end
  local pending = ""
  local job = vim.fn.jobstart(cmd, {
    stdout_buffered = false,
    on_stdout = function(_, data)
      if not data then
        return
      end
      data[1] = pending .. data[1]
      pending = table.remove(data)  -- the last chunk may be a partial line
      for _, line in ipairs(data) do
        if line ~= "" then
          on_line(line)
        end
      end
    end,
    on_exit = function(_, code)
      if on_exit then
        on_exit(code)
      end
    end,
  })
  if job <= 0 then
    return nil
  end
  return { job = job, pid = vim.fn.jobpid(job) }
end

function M.stop(handle)
  if not handle then
    return
  end
  if handle.system then
    pcall(function()
      handle.system:kill(15)
    end)
  elseif handle.job then
    pcall(vim.fn.jobstop, handle.job)
  end
end

return M
