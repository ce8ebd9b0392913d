-- tokline: spend and quota of AI coding assistants in Neovim's statusline.
-- Commands only; everything else loads on first use (lua/tokline/init.lua).
if vim.g.loaded_tokline then
  return
end
vim.g.loaded_tokline = true

vim.api.nvim_create_user_command("ToklineStart", function()
  require("tokline").start()
end, { desc = "Start the tokline feed (tokline watch --json)" })
vim.api.nvim_create_user_command("ToklineStop", function()
  require("tokline").stop()
end, { desc = "Stop the tokline feed" })
vim.api.nvim_create_user_command("ToklineStatus", function()
  print(require("tokline").status())
end, { desc = "Show tokline's status line" })

-- Works without setup(): start after startup unless the user said not to.
vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  callback = function()
    if vim.g.tokline_autostart ~= false then
      require("tokline").start()
    end
  end,
})
