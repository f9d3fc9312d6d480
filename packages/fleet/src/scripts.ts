import { createHash } from 'node:crypto';

/**
 * The Lua scripts behind the fleet. Each runs atomically in Redis, so every decision
 * (grant a slot, approve an event, take the poller lease) is made on one consistent view
 * and no two members can both win. Times are Redis server time (`TIME`), never a member's
 * clock: a VM that was just frozen has a wall clock that is wrong until its time sync
 * steps it, and members on different VMs disagree anyway.
 *
 * Group keys share the hash tag `{group}`, poller keys the tag of their VM, and the
 * approval registry (members of every group, prepared and approved marks) the tag `{vms}`,
 * so every script touches one hash slot (Redis Cluster safe). Requires Redis ≥ 5 (effects
 * replication of scripts that call `TIME`).
 */
export interface Script {
  readonly name: string;
  readonly body: string;
  readonly sha: string;
}

function script(name: string, body: string): Script {
  return { name, body, sha: createHash('sha1').update(body).digest('hex') };
}

// Shared prelude. Members: ZSET id → expiry (ms), HASH id → JSON view; slots: ZSET id →
// lease expiry. A member whose heartbeat expired is removed here, by whichever script
// runs next, and the group is told on its channel.
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function decode(raw)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return nil
end
local function purge_members(members, info, channel, now)
  local dead = redis.call('ZRANGEBYSCORE', members, '-inf', now)
  for _, id in ipairs(dead) do
    redis.call('ZREM', members, id)
    redis.call('HDEL', info, id)
    redis.call('PUBLISH', channel, 'left ' .. id)
  end
end
local function purge(members, info, slots, channel, now)
  purge_members(members, info, channel, now)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
end
local function serving_others(members, info, slots, me, now)
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', members, '(' .. now, '+inf')) do
    if id ~= me and not redis.call('ZSCORE', slots, id) then
      local v = decode(redis.call('HGET', info, id))
      if v and v.ready == true then n = n + 1 end
    end
  end
  return n
end
local function register(members, info, channel, id, ttl, view, now)
  local was = redis.call('ZSCORE', members, id)
  local old = decode(redis.call('HGET', info, id))
  redis.call('ZADD', members, now + ttl, id)
  redis.call('HSET', info, id, view)
  if not was then
    redis.call('PUBLISH', channel, 'joined ' .. id)
  else
    local new = decode(view)
    if old and new and old.ready ~= new.ready then
      redis.call('PUBLISH', channel, 'ready ' .. id)
    end
  end
end
`;

/**
 * Heartbeat: purge the dead, (re-)register this member, reconcile its slot with what the
 * member believes (`hold` renews it and reports whether it still exists, `none` removes
 * it, `keep` leaves it alone while an acquire or release is in flight), and return the
 * group as `{slotOk, now, id, memberExpiry, view, slotExpiry, …}` for `status()`.
 *
 * KEYS members, info, slots · ARGV id, memberTtlMs, viewJson, slotMode, slotTtlMs, channel
 */
export const HEARTBEAT = script(
  'heartbeat',
  `${PRELUDE}
local members, info, slots = KEYS[1], KEYS[2], KEYS[3]
local id, ttl, view, mode, slotTtl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local now = now_ms()
purge(members, info, slots, channel, now)
register(members, info, channel, id, ttl, view, now)
local slotOk = 0
if mode == 'hold' then
  if redis.call('ZSCORE', slots, id) then
    redis.call('ZADD', slots, now + slotTtl, id)
    slotOk = 1
  end
elseif mode == 'none' then
  if redis.call('ZREM', slots, id) == 1 then
    redis.call('PUBLISH', channel, 'released ' .. id)
  end
end
local group = {}
local all = redis.call('ZRANGE', members, 0, -1, 'WITHSCORES')
local i = 1
while i <= #all do
  local m = all[i]
  group[#group + 1] = m
  group[#group + 1] = all[i + 1]
  group[#group + 1] = redis.call('HGET', info, m) or ''
  group[#group + 1] = redis.call('ZSCORE', slots, m) or ''
  i = i + 2
end
return { slotOk, now, group }
`,
);

/**
 * Grants a drain slot only while at least `min` OTHER live members serve (ready and not
 * holding a slot): after the grant, `minInRotation` members are still in rotation. A
 * member that already holds a slot gets it renewed. Returns `{granted, servingOthers}`.
 *
 * KEYS members, info, slots · ARGV id, memberTtlMs, viewJson, slotTtlMs, min, channel
 */
export const ACQUIRE = script(
  'acquire',
  `${PRELUDE}
local members, info, slots = KEYS[1], KEYS[2], KEYS[3]
local id, ttl, view, slotTtl, min, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local now = now_ms()
purge(members, info, slots, channel, now)
register(members, info, channel, id, ttl, view, now)
local n = serving_others(members, info, slots, id, now)
if redis.call('ZSCORE', slots, id) or n >= min then
  redis.call('ZADD', slots, now + slotTtl, id)
  return { 1, n }
end
return { 0, n }
`,
);

/** KEYS slots · ARGV id, channel. Idempotent; tells the group when a slot was freed. */
export const RELEASE = script(
  'release',
  `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], 'released ' .. ARGV[1])
  return 1
end
return 0
`,
);

/**
 * KEYS members, info[, slots] · ARGV id, channel: leave the group (or the approval
 * registry, which has no slots) now.
 */
export const LEAVE = script(
  'leave',
  `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('ZREM', KEYS[3], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], 'left ' .. ARGV[1])
return 1
`,
);

/**
 * Heartbeat in the approval registry (every group of the key prefix): purge the dead,
 * telling the others on the registry's channel, and (re-)register this member.
 *
 * KEYS members, info · ARGV id, memberTtlMs, viewJson, channel
 */
export const REGISTER = script(
  'register',
  `${PRELUDE}
local members, info = KEYS[1], KEYS[2]
local id, ttl, view, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now = now_ms()
purge_members(members, info, channel, now)
register(members, info, channel, id, ttl, view, now)
return 1
`,
);

/**
 * Records that member `id` (on VM `resourceName`) prepared for an event, then approves
 * it — once, fleet-wide — when every listed VM has at least one live member, every live
 * member on a listed VM has prepared, in whatever group (a freeze stops the whole VM), and
 * no live member of unknown VM name is unprepared. The caller's own VM must be listed.
 * Runs on the approval registry, which holds the members of every group. Returns
 * `{approve, reason}`; exactly one caller ever gets `approve = 1` while the key lives.
 *
 * KEYS members, info, prepared, approved
 * ARGV id, memberTtlMs, viewJson, resourceName, resourcesJson, keyTtlMs, channel
 */
export const PREPARED = script(
  'prepared',
  `${PRELUDE}
local members, info, prepared, approved = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, ttl, view, vm, keyTtl, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[6]), ARGV[7]
local resources = decode(ARGV[5]) or {}
local now = now_ms()
purge_members(members, info, channel, now)
register(members, info, channel, id, ttl, view, now)
local listed = {}
for _, r in ipairs(resources) do listed[r] = true end
if not listed[vm] then return { 0, 'this VM is not listed' } end
redis.call('SADD', prepared, id)
redis.call('PEXPIRE', prepared, keyTtl)
if redis.call('EXISTS', approved) == 1 then return { 0, 'already approved' } end
local seen = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', members, '(' .. now, '+inf')) do
  local v = decode(redis.call('HGET', info, m))
  local r = v and v.resourceName
  if v and v.observing == true then
    -- In observe mode: it prepares nothing, so nobody waits for it.
  elseif type(r) == 'string' and r ~= '' and listed[r] then
    if redis.call('SISMEMBER', prepared, m) == 0 then return { 0, 'waiting for ' .. m } end
    seen[r] = true
  elseif (type(r) ~= 'string' or r == '') and redis.call('SISMEMBER', prepared, m) == 0 then
    -- Its VM name is not known yet (the first metadata answer can take minutes): it may
    -- be on a listed VM, serving. Approving now could freeze it mid-request.
    return { 0, 'waiting for ' .. m .. ' (its VM name is unknown)' }
  end
end
for _, r in ipairs(resources) do
  if not seen[r] then return { 0, r .. ' has no live member' } end
end
redis.call('SET', approved, id, 'PX', keyTtl)
return { 1, 'approve' }
`,
);

/** KEYS approved · ARGV id: undo an approval whose answer never reached its member. */
export const UNAPPROVE = script(
  'unapprove',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * Takes or renews the per-VM poller lease, the holder being `memberId incarnation`.
 * Taking it (free, or held by an earlier start of the same member, restarted with a fixed
 * memberId) opens a new term: its epoch, the fencing token every published document
 * carries, is above every earlier one, even after Redis lost its data (it is at least the
 * server time in µs, below 2^53 so it stays exact in Lua and JavaScript). Returns
 * `{mine, holder, epoch, previous}`: `previous` is the holder a new term replaced.
 *
 * KEYS poller, epoch · ARGV holder, leaseMs, memberId
 */
export const CLAIM = script(
  'claim',
  `
local cur = redis.call('GET', KEYS[1])
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { 1, cur, epoch }
end
if cur and string.sub(cur, 1, #ARGV[3] + 1) ~= ARGV[3] .. ' ' then return { 0, cur, epoch } end
local t = redis.call('TIME')
epoch = math.max(epoch + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('SET', KEYS[2], string.format('%d', epoch), 'PX', 86400000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return { 1, ARGV[1], epoch, cur or '' }
`,
);

/** KEYS poller · ARGV holder: give the lease up so a follower takes over at once. */
export const RESIGN = script(
  'resign',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * Publishes what the poller read, fenced by the lease's term: a poller that lost it
 * (frozen past its lease, then woken) cannot overwrite what its successor published, even
 * if it took the lease again since. Returns 1 if published, 0 if this holder's term is
 * over.
 *
 * KEYS poller, latest, epoch · ARGV holder, payload, latestTtlMs, channel, epoch
 */
export const PUBLISH_DOC = script(
  'publish',
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
`,
);

/**
 * Read-only view of a group for the CLI: `{now, id, memberExpiry, view, slotExpiry, …}`
 * of members still alive, plus slot holders that are no longer members.
 * KEYS members, info, slots
 */
export const SNAPSHOT = script(
  'snapshot',
  `${PRELUDE}
local members, info, slots = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local out = {}
local listed = {}
local all = redis.call('ZRANGEBYSCORE', members, '(' .. now, '+inf', 'WITHSCORES')
local i = 1
while i <= #all do
  local m = all[i]
  listed[m] = true
  out[#out + 1] = m
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('HGET', info, m) or ''
  out[#out + 1] = redis.call('ZSCORE', slots, m) or ''
  i = i + 2
end
local held = redis.call('ZRANGEBYSCORE', slots, '(' .. now, '+inf', 'WITHSCORES')
i = 1
while i <= #held do
  if not listed[held[i]] then
    out[#out + 1] = held[i]
    out[#out + 1] = ''
    out[#out + 1] = ''
    out[#out + 1] = held[i + 1]
  end
  i = i + 2
end
return { now, out }
`,
);
