-- GETs spread over many consistent-hash keys: the query argument "user"
-- takes N distinct values (after --, default 100000), for a route whose
-- upstream is chash on arg_user.
--   wrk -t1 -c64 -d10s -s loadtest/wrk/chash.lua http://127.0.0.1:9080/chash -- 100000
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(dir .. "summary.lua").done

local keys, path = 100000, "/"
local i = 0

function init(args)
  keys = tonumber(args[1] or "") or keys
  path = wrk.path
  i = math.random(keys)
end

function request()
  i = i % keys + 1
  return wrk.format(nil, path .. "?user=u" .. i)
end
