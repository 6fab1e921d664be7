-- A signed user event `message` carrying the text "hello". The answer must
-- be 200, text/plain, "hello" (the bench server echoes it).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local ce = dofile(here .. "common.lua")

wrk.method = "POST"
wrk.path = ce.path
wrk.headers = ce.event("azure.webpubsub.user.message", "message")
wrk.headers["ce-userId"] = "user1"
wrk.headers["Content-Type"] = "text/plain"
wrk.body = "hello"
