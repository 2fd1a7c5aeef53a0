-- delete: remove jobs that are not running, wherever they wait, with their record and result
-- KEYS[1] jobs  KEYS[2] attempts  KEYS[3] errors  KEYS[4] leases  KEYS[5] scheduled  KEYS[6] dead
-- KEYS[7] queue:high  KEYS[8] queue:normal  KEYS[9] queue:low
-- KEYS[9+i] result key of the i-th job
-- then the flow keys (see the prelude): a ready job of a group waits in its group's set
-- ARGV: job ids
-- returns: the number of jobs deleted. A leased (running) job is left alone: its worker
--          owns it until it acks, fails or its lease is reaped. So is a workflow's step
--          (its record names a workflow_id): the workflow waits for it, so only the
--          workflow may drop it (cancel_workflow). A ready job is found with LREM from
--          the head of its own priority's list first (O(position)).
local function in_workflow(job)
  local wf = job['workflow_id']
  return wf ~= nil and wf ~= cjson.null
end
local deleted = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  local record = redis.call('HGET', KEYS[1], id)
  local job = record and decode_record(record) or {}
  if not redis.call('ZSCORE', KEYS[4], id) and not in_workflow(job) then
    local gone = redis.call('ZREM', KEYS[5], id) + redis.call('ZREM', KEYS[6], id)
    if gone == 0 and record and type(job['group']) == 'string' then  -- flow
      if remove_grouped(flow_keys(), priority_of(job), id) then gone = 1 end
    elseif gone == 0 and record then
      local own = priority_of(job)
      gone = redis.call('LREM', queue_key(7, own), 1, id)
      for p = 1, 3 do
        if gone == 0 and p ~= own then gone = redis.call('LREM', queue_key(7, p), 1, id) end
      end
    end
    gone = gone + redis.call('DEL', KEYS[9 + i])
    if record then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
    if gone > 0 or record then deleted = deleted + 1 end
  end
end
return deleted
