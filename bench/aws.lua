-- Load for bench/aws.py: one SigV4-signed AWS request (POST /, JSON 1.1), sent again and again.
-- The signature's headers come as wrk --header options; the argument after `--` is the file
-- holding the exact body that was signed. SigV4 has no nonce: a signed request stays valid for
-- the 5 minutes of clock skew AWS allows, and the server verifies it in full every time (key
-- lookup, canonical request, HMAC), so this is the AWS face's own cost with the cheapest client.

init = function(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
end

-- The figures are printed as one JSON line by bench/http.lua's done() hook, read from beside
-- this script (wrk gives no include path).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "http.lua")
