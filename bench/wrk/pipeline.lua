-- HTTP/1.1 pipelining: each connection sends `depth` requests (default 16) in one
-- write, then waits for all their responses. Usage: wrk -s pipeline.lua URL -- 16 /
-- wrk counts every response, but records one latency sample per batch.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local batch

function init(args)
  local depth = tonumber(args[1]) or 16
  local path = args[2] or "/"
  local one = wrk.format("GET", path)
  batch = string.rep(one, depth)
end

function request()
  return batch
end
