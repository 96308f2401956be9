-- What Tandem does without a dial plan, written as one: the static
-- [[routes]] of the config file (longest prefix of the dialled user).
--
--   no route for the dialled user  -> 404 Not Found
--   a target answers               -> the call is bridged
--   every target fails             -> the caller gets that failure
--
-- Start here when you write your own dial plan.

function on_invite(call)
  local route = tandem.route(call.user)
  if not route then
    return call:reject(404)
  end
  -- The route's targets, mode (serial/parallel) and ring timeout.
  call:dial(route)
  -- Returning without answering relays the dial's failure to the caller.
end
