-- wrk script for bench/api.sh: `POST /container-registry/v1/scans` with the body
-- {"imageId": "$BENCH_IMAGE_ID"}. With BENCH_DELAY_MS set, each connection waits that
-- many milliseconds between requests (wrk's `delay` hook; the wait is not counted in
-- the latency), which paces the offered load below what the scan workers drain.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"imageId":"' .. assert(os.getenv("BENCH_IMAGE_ID"), "BENCH_IMAGE_ID is not set") .. '"}'

local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pace and pace > 0 then
  function delay()
    return pace
  end
end
