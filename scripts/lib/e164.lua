-- E.164 normalisation of dialled numbers, for trunk.lua (`require("lib.e164")`).
--
--   e164.normalise("030 1234-567")       --> "+49301234567"
--   e164.normalise("0044%2020.7946.0000") --> "+442079460000"
--   e164.normalise("+1 (212) 555-0100")  --> "+12125550100"
--   e164.normalise("1234")               --> nil, "not a full number"

local M = {}

-- Country code used for national numbers (0XXX), without the "+".
M.country = "49"

-- Characters people and phones put in numbers to make them readable.
local SEPARATORS = "[%s%-%.%(%)/]"

--- Undoes URI escapes (%20) and removes spaces, dashes, dots, brackets
--- and slashes.
function M.strip(number)
  local unescaped = number:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end)
  return (unescaped:gsub(SEPARATORS, ""))
end

--- The number as +CC..., or nil and why not.
function M.normalise(number)
  local n = M.strip(number)
  if n:find("^%+") then
    -- already international
  elseif n:find("^00") then
    n = "+" .. n:sub(3)
  elseif n:find("^0") then
    n = "+" .. M.country .. n:sub(2)
  else
    return nil, "not a full number"
  end
  -- E.164: a country code that does not start with 0, at most 15 digits.
  if not n:find("^%+[1-9]%d+$") then
    return nil, "not a phone number"
  end
  if #n - 1 > 15 or #n - 1 < 7 then
    return nil, "wrong length"
  end
  return n
end

return M
