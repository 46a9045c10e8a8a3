-- wrk script: POST batches of room visits with unique client event ids to the ingestion API.
-- Environment: API_KEY, EVENT (slug), BATCH (items per request), ATTENDEES (count), ROOMS (count).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Api-Key " .. os.getenv("API_KEY")
  wrk.path = "/api/v1/events/" .. os.getenv("EVENT") .. "/interactions/"
end

function request()
  local batch = tonumber(os.getenv("BATCH") or "50")
  local attendees = tonumber(os.getenv("ATTENDEES") or "300")
  local rooms = tonumber(os.getenv("ROOMS") or "20")
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local items = {}
  for i = 1, batch do
    counter = counter + 1
    items[i] = string.format(
      '{"client_event_id":"load-%d-%d-%d","attendee_id":"att-%04d","context_kind":"room","context_id":"room-%02d","type":"join_room","value":%d,"occurred_at":"%s"}',
      os.time(), thread_id, counter, (counter * 7919) % attendees + 1, (counter * 31) % rooms + 1, 60 + counter % 900, now)
  end
  return wrk.format(nil, nil, nil, '{"interactions":[' .. table.concat(items, ",") .. ']}')
end
