-- Routing decided by a web service, with a cache and a static fallback.
--
-- For each call Tandem asks  GET ROUTING_URL?user=1000&from=alice  and the
-- service answers text/plain, one of:
--
--   sip:1000@127.0.0.1:5080          targets, one per line, tried in order
--   sip:1000@127.0.0.1:5081
--
--   reject 403 Blocked By Policy     refuse the call
--
-- HTTP 404 means "no such number" (404 to the caller). Any other status, a
-- body that makes no sense, a timeout or a refused connection: the static
-- [[routes]] of the config file decide instead, and the service is left
-- alone for PAUSE_SECONDS so that callers do not all wait for a dead
-- server. Good answers are cached in tandem.kv for CACHE_SECONDS.
--
-- Point ROUTING_URL at your service (the tests rewrite this line).

local ROUTING_URL = "http://127.0.0.1:8089/route"
local HTTP_TIMEOUT = 2 -- seconds a caller may wait for the service
local CACHE_SECONDS = 60
local PAUSE_SECONDS = 10

local CACHE_PREFIX = "http_routing:route:"
local PAUSED = "http_routing:paused"

--- Percent-encodes a query value.
local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- A decision from an answer body: { targets = {...} } or { reject = code,
--- reason = text }; nil and why when the body makes no sense.
local function parse(body)
  local targets = {}
  for line in body:gmatch("[^\r\n]+") do
    line = line:match("^%s*(.-)%s*$")
    local code, reason = line:match("^reject%s+(%d%d%d)%s*(.*)$")
    if code then
      return { reject = tonumber(code), reason = reason ~= "" and reason or nil }
    elseif line:find("^sips?:%S+$") then
      targets[#targets + 1] = line
    elseif line ~= "" and not line:find("^#") then
      return nil, "unexpected line `" .. line .. "`"
    end
  end
  if #targets == 0 then
    return nil, "no targets"
  end
  return { targets = targets }
end

--- Asks the service; the answer body, or nil and why.
local function ask(call)
  local url = ROUTING_URL .. "?user=" .. escape(call.user) .. "&from=" .. escape(call.from_user)
  local res, err = tandem.http{ url = url, timeout = HTTP_TIMEOUT }
  if not res then
    return nil, err
  end
  if res.status == 404 then
    return "reject 404"
  end
  if res.status ~= 200 then
    return nil, "HTTP " .. res.status
  end
  return res.body
end

--- The decision for this call: cached, from the service, or nil.
local function lookup(call)
  local key = CACHE_PREFIX .. call.user
  local cached = tandem.kv.get(key)
  if cached then
    call.vars.routing = "cache"
    return parse(cached)
  end
  if tandem.kv.get(PAUSED) then
    return nil, "paused after a failure"
  end
  local body, err = ask(call)
  local decision
  if body then
    decision, err = parse(body)
  end
  if not decision then
    tandem.kv.set(PAUSED, true, PAUSE_SECONDS)
    return nil, err
  end
  tandem.kv.set(key, body, CACHE_SECONDS)
  call.vars.routing = "service"
  return decision
end

function on_invite(call)
  local decision, err = lookup(call)
  if not decision then
    tandem.log("warn", "routing service:", err, "- using the static routes")
    call.vars.routing = "static"
    local route = tandem.route(call.user)
    if not route then
      return call:reject(503, "Routing Unavailable")
    end
    return call:dial(route)
  end
  if decision.reject then
    return call:reject(decision.reject, decision.reason)
  end
  call:dial(decision.targets, { timeout = 30 })
end
