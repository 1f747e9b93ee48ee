-- wrk: POST /like with a new (post, user) pair on every request, so every like is new.
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = args[1] or "r"
end
request = function()
  counter = counter + 1
  local body = string.format('{"post":"p%d","user":"%s-%d-%d"}', counter % 1000, prefix, tid, counter)
  return wrk.format("POST", "/like", { ["Content-Type"] = "application/json" }, body)
end
