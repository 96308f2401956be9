-- A trunk gateway: calls from the PBX go out over two carriers.
--
--   1. the dialled number is normalised to E.164 (lib/e164.lua)
--   2. the longest matching prefix of ROUTES picks the carriers, in order
--   3. headers only the PBX should see are removed; P-Asserted-Identity and
--      From present the caller's public number
--   4. the carriers are tried in order; the next one only when a carrier
--      fails (5xx, no response), not when the callee is busy or declines
--
--   tandem simulate scripts/trunk.lua --from 101 --to "030 1234-567" \
--     --outcome "sip:+49301234567@127.0.0.1:5072=503"

local e164 = require("lib.e164")

local CARRIERS = {
  alpha = "127.0.0.1:5071",
  beta = "127.0.0.1:5072",
}

-- Prefix of the E.164 number -> carriers to try, best first. The longest
-- matching prefix wins; `reject` refuses the call.
local ROUTES = {
  { prefix = "+", carriers = { "alpha", "beta" } },
  { prefix = "+4930", carriers = { "beta", "alpha" } }, -- Berlin: beta is cheaper
  { prefix = "+1", carriers = { "beta" } },
  { prefix = "+49900", reject = { 403, "Premium Numbers Blocked" } },
}

-- The public number (and name) each PBX extension presents.
local PRESENTED = {
  ["100"] = { number = "+4930123456100", name = "Example GmbH" },
  ["101"] = { number = "+4930123456101", name = "Ada Lovelace" },
  ["102"] = { number = "+4930123456102" },
}
local MAIN_NUMBER = "+4930123456"
local TRUNK_DOMAIN = "trunk.example.net"

-- Headers the PBX adds for itself; carriers must not see them.
local INTERNAL_HEADERS = { "X-Account", "X-Billing-Id", "X-Call-Kind", "X-Internal-Route" }

-- A carrier failure (try the next carrier) as opposed to an answer from
-- the callee (busy, declined, no such number: tell the caller).
local function carrier_failed(code)
  return code >= 500 and code < 600 or code == 408
end

local function longest_prefix(number)
  local best
  for _, route in ipairs(ROUTES) do
    if number:sub(1, #route.prefix) == route.prefix and (not best or #route.prefix > #best.prefix) then
      best = route
    end
  end
  return best
end

local function clean_headers(call)
  for _, name in ipairs(INTERNAL_HEADERS) do
    if call:header(name) then
      call:remove_header(name)
    end
  end
end

local function present_caller(call)
  local p = PRESENTED[call.from_user] or { number = MAIN_NUMBER }
  call:set_from{ user = p.number, name = p.name or "" }
  call:set_header("P-Asserted-Identity", "<sip:" .. p.number .. "@" .. TRUNK_DOMAIN .. ">")
end

function on_invite(call)
  local number, why = e164.normalise(call.user)
  if not number then
    tandem.log("info", "cannot normalise", call.user, why)
    return call:reject(484, "Address Incomplete")
  end
  call.vars.number = number

  local route = longest_prefix(number)
  if not route then
    return call:reject(404)
  end
  if route.reject then
    return call:reject(route.reject[1], route.reject[2])
  end

  clean_headers(call)
  present_caller(call)

  for _, name in ipairs(route.carriers) do
    call.vars.carrier = name
    local r = call:dial("sip:" .. number .. "@" .. CARRIERS[name], { timeout = 60 })
    if r.answered or not carrier_failed(r.code) then
      return -- done, or the callee's answer goes to the caller
    end
    tandem.log("warn", "carrier", name, "failed with", r.code, r.reason)
  end
  -- Every carrier failed: the last failure goes to the caller.
end
