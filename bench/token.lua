-- wrk script for bench/token_bench.sh: every request is a `docker login`/`docker pull`-style
-- token request, GET /jwt/auth with Basic credentials of a read+write deploy token.
--
-- Environment (set by token_bench.sh):
--   WVS_BENCH_USER     deploy-token username, e.g. wvs+deploy-token-1   (required)
--   WVS_BENCH_SECRET   its secret, wvsdt-...                            (required)
--   WVS_BENCH_SERVICE  service= value          [container_registry]
--   WVS_BENCH_SCOPE    scope= value            [repository:bench/app:pull,push]
--   WVS_BENCH_PATH     endpoint path           [/jwt/auth] (/token/ for distribution's
--                      contrib/token-server in bench/peer_bench.sh)
--   WVS_BENCH_CHECK    bodies: every answer is handed to response() below, which looks for
--                      the access_token (wrk then copies each body into Lua: CPU on the same
--                      cores as the server) [default];
--                      status: no response() at all, wrk only counts answers that are not
--                      2xx/3xx (summary.errors.status; any such answer is reported as non200)
--
-- Every response that is not a 200 carrying an access_token is counted; done() prints
--   wrk-check: responses=N non200=N bad_body=N statuses=CODE:N,... errors=connect:N,...
--   wrk-latency-us: p50=N p99=N
-- and token_bench.sh fails the run if non200, bad_body or any socket error is non-zero.

local user = os.getenv("WVS_BENCH_USER")
local secret = os.getenv("WVS_BENCH_SECRET")
local service = os.getenv("WVS_BENCH_SERVICE") or "container_registry"
local scope = os.getenv("WVS_BENCH_SCOPE") or "repository:bench/app:pull,push"
local path = os.getenv("WVS_BENCH_PATH") or "/jwt/auth"
local check = os.getenv("WVS_BENCH_CHECK") or "bodies"
if check ~= "bodies" and check ~= "status" then
  error("token.lua: WVS_BENCH_CHECK must be bodies or status")
end
if user == nil or user == "" or secret == nil or secret == "" then
  error("token.lua: WVS_BENCH_USER and WVS_BENCH_SECRET must be set")
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding (RFC 4648 §4), as HTTP Basic uses.
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1)
      .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=")
      .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

-- Percent-encodes everything but RFC 3986 unreserved characters, like Go's url.QueryEscape
-- (which docker uses). Matters for the default username: a raw `+` in a query means space.
local function query_escape(s)
  return (s:gsub("[^%w%-%._~]", function(ch)
    return string.format("%%%02X", ch:byte())
  end))
end

wrk.method = "GET"
wrk.path = path .. "?service=" .. query_escape(service)
  .. "&scope=" .. query_escape(scope)
  .. "&account=" .. query_escape(user)
wrk.headers["Authorization"] = "Basic " .. base64(user .. ":" .. secret)

-- Per-thread counters live in each thread's Lua state; done() runs in the main state and
-- collects them through the thread handles kept by setup().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  responses = 0
  non200 = 0
  bad_body = 0
  statuses = {}
end

-- wrk calls response() only if it is defined (and then parses every body for it).
if check == "bodies" then
  function response(status, headers, body)
    responses = responses + 1
    if status ~= 200 then
      non200 = non200 + 1
      statuses[status] = (statuses[status] or 0) + 1
    elseif body == nil or not string.find(body, '"access_token"', 1, true) then
      bad_body = bad_body + 1
    end
  end
end

function done(summary, latency, requests)
  local total, bad, badb = 0, 0, 0
  local merged = {}
  for _, t in ipairs(threads) do
    total = total + (t:get("responses") or 0)
    bad = bad + (t:get("non200") or 0)
    badb = badb + (t:get("bad_body") or 0)
    for code, n in pairs(t:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(merged) do
    parts[#parts + 1] = tostring(code) .. ":" .. tostring(n)
  end
  table.sort(parts)
  local e = summary.errors
  if check == "status" then
    total = summary.requests
    bad = e.status
    if bad > 0 then parts[#parts + 1] = "not-2xx/3xx:" .. tostring(bad) end
  end
  io.write(string.format(
    "wrk-check: responses=%d non200=%d bad_body=%d statuses=%s errors=connect:%d,read:%d,write:%d,timeout:%d\n",
    total, bad, badb, (#parts > 0 and table.concat(parts, ",") or "-"),
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("wrk-latency-us: p50=%d p99=%d\n",
    latency:percentile(50), latency:percentile(99)))
end
