-- wrk script of bench/serve.py: RFC 8058 one-click unsubscribes, each token once, each request from a
-- client address of its own (X-Forwarded-For through serve's trusted proxy, so no per-client limit is met).
--   wrk -t2 -c50 -d4s -s bench/serve_wrk.lua http://127.0.0.1:PORT -- PATHS_FILE THREADS
-- PATHS_FILE holds one /u/<token> path a line; thread k of THREADS takes every THREADS-th line from k.
-- done() prints the one-clicks sent and answered 200, whether any thread ran out of tokens, and the latency.

local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  table.insert(threads, thread)
  count = count + 1
end

function init(args)
  local file = args[1]
  step = tonumber(args[2])
  paths = {}
  local k = 0
  for line in io.lines(file) do
    if k % step == id then
      paths[#paths + 1] = line
    end
    k = k + 1
  end
  sent, ok, other, exhausted = 0, 0, 0, 0
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  body = "List-Unsubscribe=One-Click"
end

function request()
  if sent >= #paths then
    exhausted = 1
    return wrk.format("GET", "/healthz")
  end
  sent = sent + 1
  local n = sent * step + id
  headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("POST", paths[sent], headers, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, o, x, e = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    o = o + thread:get("ok")
    x = x + thread:get("other")
    e = e + thread:get("exhausted")
  end
  io.write(string.format("RESULT sent %d ok %d other %d exhausted %d seconds %.3f\n", s, o, x, e, summary.duration / 1e6))
  io.write(string.format("RESULT latency_ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n", latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
