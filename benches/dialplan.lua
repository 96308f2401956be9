-- The dial plan of the call-rate benchmark (issue 4, "Performance"): reads
-- two headers, sets one and dials. `{{UAS}}` is replaced by the script
-- runner (benches/sipp-call-rate.sh) with the callee's address.
function on_invite(call)
  local subject = call:header("Subject")
  local agent = call:header("User-Agent")
  call:set_header("X-Routed-By", agent or subject or "tandem")
  call:dial("sip:" .. call.user .. "@{{UAS}}")
end
