-- Spawning seam: one long-running job with line-buffered stdout (jobstart works on 0.7+).
local M = {}

function M.spawn(cmd, on_line, on_exit)
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
  return job
end

function M.stop(job)
  if job and job > 0 then
    pcall(vim.fn.jobstop, job)
  end
end

return M
