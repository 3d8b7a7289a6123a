-- POST bodies of several sizes (bytes, rotating per request) to the URL
-- given to wrk. Sizes come after --, default 128 1024 16384:
--   wrk -t1 -c64 -d10s -s loadtest/wrk/post.lua http://127.0.0.1:9080/post -- 128 4096
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(dir .. "summary.lua").done

local reqs = {}
local i = 0

function init(args)
  local sizes = {}
  for _, a in ipairs(args) do sizes[#sizes + 1] = tonumber(a) end
  if #sizes == 0 then sizes = {128, 1024, 16384} end
  for _, n in ipairs(sizes) do
    local body = string.rep("x", n)
    reqs[#reqs + 1] = wrk.format("POST", nil,
      {["Content-Type"] = "application/octet-stream", ["User-Agent"] = "wrk"}, body)
  end
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
