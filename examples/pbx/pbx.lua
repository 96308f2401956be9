-- An office PBX on Tandem's registrar (examples/pbx/tandem.toml).
--
--   1000-1099    every phone registered as that extension rings; busy, no
--                answer or no phone registered goes to the operator (1000),
--                then to voicemail
--   0 + number   out over the trunk ([[routes]] prefix "0"), for the
--                extensions' own phones only
--   anything else  404
--
-- Phones authenticate (tandem.toml's [[users]]), so call.auth_user names
-- the calling extension. Calls from a trusted source (the trunk) have no
-- auth_user: they may ring extensions but not go out again. Try it:
--
--   tandem simulate examples/pbx/pbx.lua --from 1001 --to 1002 \
--     --outcome "user:1002=486"

local OPERATOR = "1000"
local VOICEMAIL = "sip:voicemail@127.0.0.1:5090" -- a voicemail server
local RING_SECONDS = 20
local OFFICE_NUMBER = "+4930123456" -- what the trunk shows for every extension

-- The names phones show for each extension.
local NAMES = { ["1000"] = "Reception", ["1001"] = "Ada", ["1002"] = "Grace" }

-- Busy, no answer (the ring timeout reports 480, and so does a user with
-- no phone registered), unreachable (408): try the next in line.
local FAIL_OVER = { [486] = true, [480] = true, [408] = true }

-- Phone families, found in the User-Agent (lower case).
local FAMILIES = { "baresip", "linphone", "zoiper", "microsip", "yealink", "snom", "grandstream", "polycom", "cisco" }

local function family_of(user_agent)
  local ua = (user_agent or ""):lower()
  for _, name in ipairs(FAMILIES) do
    if ua:find(name, 1, true) then
      return name
    end
  end
  return "other"
end

-- Each registration is tagged with its phone family, which
-- tandem.registrar.lookup returns with the binding.
function on_register(reg)
  if #reg.contacts > 0 then
    reg.attrs.family = family_of(reg.user_agent)
  end
end

local function call_extension(call, ext)
  call.vars.extension = ext
  for _, phone in ipairs(tandem.registrar.lookup(ext)) do
    tandem.log("debug", "extension", ext, "phone", phone.uri, "at", phone.received, "is a", phone.attrs.family or "?")
  end
  call.vars.leg = "phones"
  local r = call:dial("user:" .. ext, { timeout = RING_SECONDS })
  if r.answered or not FAIL_OVER[r.code] then
    return -- answered (and over by now), or a failure to relay as it is
  end
  -- The operator (unless the operator was called, or is calling), then
  -- voicemail: one after the other.
  local fallback = {}
  if ext ~= OPERATOR and call.auth_user ~= OPERATOR then
    fallback[#fallback + 1] = "user:" .. OPERATOR
  end
  fallback[#fallback + 1] = { uri = VOICEMAIL, headers = { ["X-Mailbox"] = ext } }
  tandem.log("info", "extension", ext, "gave", r.code, "- trying the operator and voicemail")
  call.vars.leg = "fallback"
  call:dial(fallback, { timeout = RING_SECONDS })
end

local function call_out(call, number)
  if not call.auth_user then
    return call:reject(403, "Outside Line For Extensions Only")
  end
  local route = tandem.route(number)
  if not route then
    return call:reject(404)
  end
  call.vars.leg = "trunk"
  call:set_from{ user = OFFICE_NUMBER, name = NAMES[call.auth_user] }
  call:dial(route)
end

function on_invite(call)
  if call.auth_user then
    -- The caller ID is the authenticated extension, with its name.
    call:set_from{ user = call.auth_user, name = NAMES[call.auth_user] }
  end
  local dialled = call.user
  if dialled:find("^10%d%d$") then
    return call_extension(call, dialled)
  end
  if dialled:find("^0%d+$") then
    return call_out(call, dialled)
  end
  return call:reject(404)
end
