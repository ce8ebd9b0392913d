-- lualine component: sections = { lualine_x = { "tokline" } }
-- Reads the cache the tokline feed keeps; never spawns on a redraw.
local component = require("lualine.component"):extend()

function component:init(options)
  component.super.init(self, options)
  require("tokline").start()
end

function component:update_status()
  return require("tokline").status()
end

return component
