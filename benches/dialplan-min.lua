-- The least a dial plan can do: dial, nothing else. Against
-- benches/dialplan.lua it splits what any dial plan costs (view,
-- coroutine, the dial through the call's command queue, the result) from
-- what the script's own reads and writes add:
--   benches/paired-call-rate.sh 4 15000 1000 benches/dialplan-min.lua
--   BASE_EXTRA=benches/dialplan-min.lua benches/paired-call-rate.sh 4
-- (SIPp's callers dial 1000.)
function on_invite(call)
  call:dial("sip:1000@{{UAS}}")
end
