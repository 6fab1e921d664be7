-- The CloudEvents headers Azure Web PubSub puts on an upstream event, shared
-- by the scenarios. Each scenario sets a static request (no request()
-- function), so wrk builds it once and runs no Lua per request.
--
-- The signature is not written here: run.sh computes it with
-- `python3 events.py sign` from the key the servers get and passes it in
-- BENCH_SIGNATURE, with BENCH_CONNECTION_ID and BENCH_PATH.
local function env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set: run the scenarios through bench/load/run.sh")
  end
  return value
end

local M = {}
M.path = env("BENCH_PATH")
M.hub = os.getenv("BENCH_HUB") or "chat"
M.connection_id = env("BENCH_CONNECTION_ID")
M.signature = env("BENCH_SIGNATURE")

function M.event(ce_type, event_name)
  return {
    ["ce-specversion"] = "1.0",
    ["ce-type"] = ce_type,
    ["ce-source"] = "/hubs/" .. M.hub .. "/client/" .. M.connection_id,
    ["ce-id"] = "1",
    ["ce-time"] = "2024-01-01T00:00:00Z",
    ["ce-awpsversion"] = "1.0",
    ["ce-hub"] = M.hub,
    ["ce-connectionId"] = M.connection_id,
    ["ce-eventName"] = event_name,
    ["ce-signature"] = M.signature,
    ["WebHook-Request-Origin"] = "localhost",
  }
end

return M
