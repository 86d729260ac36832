-- Load for bench/parameters.py: GET <prefix><name><suffix>, the name taken in turn from a file
-- of URL-encoded parameter names (one a line), so the server reads many parameters rather than
-- one hot row. Arguments after `--`: the names file, the URL prefix, the URL suffix.

local thread_count = 0

-- Runs once per thread in the main interpreter: each thread starts at its own place in the list.
setup = function(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local names = {}
local position = 0
local prefix, suffix

init = function(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if line ~= "" then
      names[#names + 1] = line
    end
  end
  file:close()
  prefix, suffix = args[2], args[3] or ""
  position = ((thread_index or 0) * 397) % #names
end

request = function()
  position = position % #names + 1
  return wrk.format("GET", prefix .. names[position] .. suffix)
end

-- The figures are printed as one JSON line by bench/http.lua's done() hook, read from beside
-- this script (wrk gives no include path).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "http.lua")
