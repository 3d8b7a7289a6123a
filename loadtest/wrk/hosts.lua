-- GETs spread over many virtual hosts: Host is h<i>.example.com for i in
-- 0..N-1 (after --, default 1000), for routes bound to those hosts.
--   wrk -t1 -c64 -d10s -s loadtest/wrk/hosts.lua http://127.0.0.1:9080/site -- 1000
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(dir .. "summary.lua").done

local reqs = {}
local i = 0

function init(args)
  local n = tonumber(args[1] or "") or 1000
  for h = 0, n - 1 do
    reqs[#reqs + 1] = wrk.format("GET", nil, {Host = "h" .. h .. ".example.com", ["User-Agent"] = "wrk"})
  end
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
