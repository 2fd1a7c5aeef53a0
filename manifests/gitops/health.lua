-- Argo CD health of a Bananas WorkerPool or CronSchedule (resource.customizations.health).
-- Input: obj, the resource as stored. Output: hs.status (Healthy, Progressing,
-- Degraded, Suspended) and hs.message. The operator writes kstatus conditions
-- (Ready, Reconciling, Stalled), each with the observedGeneration it speaks
-- for; a condition about an older generation is not believed. Lua 5.1, as
-- Argo CD runs it (gopher-lua).
local hs = {}
local generation = obj.metadata and obj.metadata.generation
local status = obj.status

local function find(kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind then
      if condition.observedGeneration ~= nil and condition.observedGeneration ~= generation then
        return nil
      end
      return condition
    end
  end
  return nil
end

local function explain(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

if status == nil or status.observedGeneration == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to act on generation " .. tostring(generation)
  return hs
end

local stalled, reconciling, ready = find("Stalled"), find("Reconciling"), find("Ready")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled)
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = explain(reconciling)
elseif ready ~= nil and ready.status == "True" then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = explain(ready)
elseif ready ~= nil then
  hs.status = "Progressing"
  hs.message = explain(ready)
else
  hs.status = "Progressing"
  hs.message = "waiting for the Ready condition of generation " .. tostring(generation)
end
return hs
