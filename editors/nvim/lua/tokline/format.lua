-- Pure formatting of a tokline snapshot (no Neovim API): testable anywhere.
local M = {}

local function money(cost, unpriced)
  local text = string.format("$%.2f", tonumber(cost) or 0)
  if unpriced then
    text = text .. "+?"
  end
  return text
end

local function left(seconds)
  local minutes = math.max(0, math.floor(seconds / 60))
  if minutes >= 60 then
    return string.format("%dh%02dm", math.floor(minutes / 60), minutes % 60)
  end
  return string.format("%dm", minutes)
end

--- Numbers for statuslines: { today, week, month, block_cost, block_left, quota_5h, quota_7d }
function M.numbers(snap, now)
  now = now or os.time()
  local out = {}
  for _, name in ipairs({ "today", "week", "month" }) do
    local period = snap[name]
    if type(period) == "table" then
      out[name] = money(period.cost_usd, period.unpriced)
      out[name .. "_tokens"] = tonumber(period.total_tokens) or 0
    end
  end
  local block = snap.block
  if type(block) == "table" and block.active and (tonumber(block["end"]) or 0) > now then
    out.block_cost = money(block.cost_usd, block.unpriced)
    out.block_left = left(block["end"] - now)
  end
  for _, quota in ipairs(type(snap.quota) == "table" and snap.quota or {}) do
    local key = "quota_" .. tostring(quota.window)
    local pct = tonumber(quota.used_percent)
    if pct and (out[key .. "_value"] == nil or pct > out[key .. "_value"]) then
      out[key .. "_value"] = pct
      out[key] = string.format("%d%%", math.floor(pct + 0.5))
    end
  end
  return out
end

--- The default line: "$4.21 today · 5h $1.80 (2h13m left) · 7d 41%"
function M.line(snap, now)
  local n = M.numbers(snap, now)
  local parts = { (n.today or "$0.00") .. " today" }
  if n.block_cost then
    table.insert(parts, string.format("5h %s (%s left)", n.block_cost, n.block_left))
  end
  if n.quota_7d then
    table.insert(parts, "7d " .. n.quota_7d)
  end
  return table.concat(parts, " · ")
end

return M
