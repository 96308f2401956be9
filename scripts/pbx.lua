-- An office PBX.
--
--   100-199, 1000-1999  extensions: the desk phone rings; busy or no answer
--                       goes to the extension's fallback (mobile or voicemail)
--   0 + number          an outside line, for internal callers only
--   anything else       404
--
-- Internal callers are extensions calling from the office network; every
-- other caller is external. Try it:
--
--   tandem simulate scripts/pbx.lua --from 100 --to 101 \
--     --outcome "sip:101@127.0.0.1:5102=486"

-- Desk phones and where a call goes when the desk does not answer.
local EXTENSIONS = {
  ["100"] = { name = "Reception", desk = "sip:100@127.0.0.1:5100" },
  ["101"] = { name = "Ada", desk = "sip:101@127.0.0.1:5101", mobile = "sip:+4917012345101@127.0.0.1:5070" },
  ["102"] = { name = "Grace", desk = "sip:102@127.0.0.1:5102" },
  ["1001"] = { name = "Lab", desk = "sip:1001@127.0.0.1:5103", voicemail = false },
}

local VOICEMAIL = "sip:voicemail@127.0.0.1:5090"
local OUTSIDE_LINE = "127.0.0.1:5070" -- the trunk gateway
local MAIN_NUMBER = "+4930123456" -- the office's number; extensions are DDIs
local RING_SECONDS = 20

-- Addresses of the office network (prefixes of the source IP).
local OFFICE_NETWORKS = { "127.0.0.", "10.1." }

-- Outcomes that send a call on to the fallback: busy, no answer (the ring
-- timeout reports 480), unreachable phone (408).
local FAIL_OVER = { [486] = true, [480] = true, [408] = true }

local function from_office(ip)
  for _, prefix in ipairs(OFFICE_NETWORKS) do
    if ip:sub(1, #prefix) == prefix then
      return true
    end
  end
  return false
end

--- Where to try when the desk phone is busy or does not answer.
local function fallback(number, ext)
  if ext.mobile then
    return ext.mobile, "mobile"
  end
  if ext.voicemail ~= false then
    return { uri = VOICEMAIL, headers = { ["X-Mailbox"] = number } }, "voicemail"
  end
  return nil
end

local function call_extension(call, number, ext)
  call.vars.leg = "desk"
  local r = call:dial(ext.desk, { timeout = RING_SECONDS })
  if r.answered or not FAIL_OVER[r.code] then
    return -- answered (and over by now), or a failure to relay as it is
  end
  local target, kind = fallback(number, ext)
  if not target then
    return -- the desk's failure goes to the caller
  end
  tandem.log("info", "extension", number, "gave", r.code, "- trying", kind)
  call.vars.leg = kind
  call:dial(target, { timeout = RING_SECONDS })
end

local function call_outside(call, number, caller)
  if not caller then
    return call:reject(403, "Outside Line For Extensions Only")
  end
  call.vars.leg = "outside"
  -- Present the office number with the extension as direct dial-in.
  call:set_from{ user = MAIN_NUMBER .. call.from_user, name = caller.name }
  call:dial("sip:" .. number .. "@" .. OUTSIDE_LINE, { timeout = 60 })
end

function on_invite(call)
  local caller = EXTENSIONS[call.from_user]
  if caller and not from_office(call.source_ip) then
    caller = nil -- an extension number from outside: not trusted
  end
  call.vars.kind = caller and "internal" or "external"
  call:set_header("X-Call-Kind", call.vars.kind)

  local dialled = call.user
  if dialled:find("^0%d+$") then
    return call_outside(call, dialled:sub(2), caller)
  end
  local ext = dialled:find("^%d%d%d%d?$") and EXTENSIONS[dialled]
  if not ext then
    return call:reject(404)
  end
  call.vars.extension = dialled
  if caller then
    -- Internal calls show who is calling from the extension table.
    call:set_from{ name = caller.name }
  end
  call_extension(call, dialled, ext)
end
