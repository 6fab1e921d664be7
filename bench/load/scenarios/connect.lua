-- A signed `connect` (azure.webpubsub.sys.connect) with the JSON body the
-- service sends. The answer must be 200 with userId "user1", groups ["lobby"].
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local ce = dofile(here .. "common.lua")

wrk.method = "POST"
wrk.path = ce.path
wrk.headers = ce.event("azure.webpubsub.sys.connect", "connect")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"claims":{"sub":["user1"]},"query":{"id":["1"]},"headers":{},"subprotocols":[],"clientCertificates":[]}'
