-- The abuse-protection handshake: OPTIONS with WebHook-Request-Origin. The
-- answer must be 200 with WebHook-Allowed-Origin. (ce-awpsversion is sent
-- too, as the service does; some handlers answer only when it is there.)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local ce = dofile(here .. "common.lua")

wrk.method = "OPTIONS"
wrk.path = ce.path
wrk.headers = {
  ["WebHook-Request-Origin"] = "localhost",
  ["ce-awpsversion"] = "1.0",
}
