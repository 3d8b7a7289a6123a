-- Plain keep-alive GET of the URL given to wrk, with a summary line.
--   wrk -t1 -c64 -d10s -s loadtest/wrk/get.lua http://127.0.0.1:9080/hello
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(dir .. "summary.lua").done

wrk.method = "GET"
wrk.headers["User-Agent"] = "wrk"
wrk.headers["Accept"] = "*/*"
