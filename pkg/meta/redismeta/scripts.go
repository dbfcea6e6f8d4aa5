package redismeta

import "github.com/redis/go-redis/v9"

// Lua scripts. Each mutation is one script, run with EVALSHA (falling back
// to EVAL) on the slot of KEYS[1], the account's base key; every key it
// touches is built from KEYS[1] (luaKeyPrelude), so it stays in that slot.
//
// Redis does not roll back a script that fails halfway, so every script
// checks everything that can fail (account and mailbox exist, quota, UID
// space) before its first write. Failures are raised as error({err=CODE})
// with a code of scriptErrors. After the writes, a script publishes its
// change event with SPUBLISH on the account channel, so events of one
// account leave in commit order.
//
// Events are "<mailbox id> <kind> <modseq> <uid set> <commit time>", the
// commit time in Unix milliseconds by the server's TIME; see decodeEvent.
// The uid set may be empty (two spaces then separate modseq and time).

// luaLib is shared by every account script.
const luaLib = `
local function fmtint(n) return string.format('%d', n) end
local function fail(code) error({err = code}) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function mustacct()
  if redis.call('EXISTS', K_ACCT) == 0 then fail('MSNOACCOUNT') end
end
local function mustmb(m)
  if redis.call('EXISTS', kMb(m)) == 0 then fail('MSNOMAILBOX') end
end
-- "1:5,7" -> {{1,5},{7,7}}
local function ranges(s)
  local out = {}
  for part in string.gmatch(s, '[^,]+') do
    local a, b = string.match(part, '^(%d+):(%d+)$')
    if a then out[#out + 1] = {tonumber(a), tonumber(b)}
    else local x = tonumber(part); out[#out + 1] = {x, x} end
  end
  return out
end
-- existing uids of mailbox m within ranges, ascending
local function existing(m, rs)
  local out = {}
  local k = kUIDs(m)
  for _, r in ipairs(rs) do
    local l = redis.call('ZRANGE', k, r[1], r[2], 'BYSCORE')
    for _, u in ipairs(l) do out[#out + 1] = tonumber(u) end
  end
  return out
end
-- ascending numbers -> "1:3,5"
local function uidstr(list)
  local parts = {}
  local i, n = 1, #list
  while i <= n do
    local a = list[i]
    local b = a
    while i < n and list[i + 1] == b + 1 do i = i + 1; b = list[i] end
    if a == b then parts[#parts + 1] = fmtint(a)
    else parts[#parts + 1] = fmtint(a) .. ':' .. fmtint(b) end
    i = i + 1
  end
  return table.concat(parts, ',')
end
-- The event's commit time is the server's TIME, read here, after the
-- writes, in the same script: milliseconds, so a receiver can measure
-- event lag against one clock, the Redis server's.
local function publish(m, kind, ms, uids)
  redis.call('SPUBLISH', K_EVENTS, m .. ' ' .. kind .. ' ' .. fmtint(ms) .. ' ' .. uids .. ' ' .. fmtint(now_ms()))
end
-- "modseq f f" -> modseq, {f, f}
local function parseflags(v)
  local ms, rest = string.match(v, '^(%d+) ?(.*)$')
  local list = {}
  for f in string.gmatch(rest, '%S+') do list[#list + 1] = f end
  return tonumber(ms), list
end
local function flagval(ms, list)
  if #list == 0 then return fmtint(ms) end
  return fmtint(ms) .. ' ' .. table.concat(list, ' ')
end
local function hasflag(list, f)
  for _, x in ipairs(list) do if x == f then return true end end
  return false
end
-- packed info (see packInfo): size at bytes 10..17, blob length at 18..19
local function infosize(v)
  local size = 0
  for i = 10, 17 do size = size * 256 + string.byte(v, i) end
  local bl = string.byte(v, 18) * 256 + string.byte(v, 19)
  return size, string.sub(v, 20, 19 + bl)
end
local function decref(blob, now)
  local c = redis.call('HINCRBY', K_BLOBREFS, blob, -1)
  if c <= 0 then
    redis.call('HDEL', K_BLOBREFS, blob)
    redis.call('ZADD', K_BLOBGC, now, blob)
  end
end
local function incref(blob)
  redis.call('HINCRBY', K_BLOBREFS, blob, 1)
  redis.call('ZREM', K_BLOBGC, blob)
end
local function trim(m, max)
  local kV = kVanished(m)
  local n = redis.call('ZCARD', kV)
  if n > max then
    local cut = redis.call('ZRANGE', kV, n - max - 1, n - max - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', kV, 0, n - max - 1)
    local s = tonumber(cut[2])
    if s > tonumber(redis.call('HGET', kMb(m), 'vtrim') or '0') then
      redis.call('HSET', kMb(m), 'vtrim', fmtint(s))
    end
  end
end
-- removes existing uids (ascending) of m as one expunge with MODSEQ ms,
-- logging them as vanished; drops blob references when drop is true.
-- Returns bytes removed. Adjusts mailbox counters, not account usage.
local function remove_entries(m, uids, ms, drop, logmax)
  local kU, kF, kI, kM, kV, kR = kUIDs(m), kFlags(m), kInfo(m), kModSeq(m), kVanished(m), kRetr(m)
  local bytes, unseen = 0, 0
  local now = nil
  for _, u in ipairs(uids) do
    local us = fmtint(u)
    local fv = redis.call('HGET', kF, us)
    if fv then
      local _, fl = parseflags(fv)
      if not hasflag(fl, '\\Seen') then unseen = unseen + 1 end
    end
    local iv = redis.call('HGET', kI, us)
    if iv then
      local size, blob = infosize(iv)
      bytes = bytes + size
      if drop then
        if not now then now = now_ms() end
        decref(blob, now)
      end
    end
    redis.call('ZREM', kU, us)
    redis.call('HDEL', kF, us)
    redis.call('HDEL', kI, us)
    redis.call('HDEL', kR, us)
    redis.call('ZREM', kM, us)
    redis.call('ZADD', kV, ms, us)
  end
  local km = kMb(m)
  redis.call('HINCRBY', km, 'n', fmtint(-#uids))
  redis.call('HINCRBY', km, 'unseen', fmtint(-unseen))
  redis.call('HINCRBY', km, 'size', fmtint(-bytes))
  trim(m, logmax)
  return bytes
end
-- copies (or moves) existing uids (ascending) of src to dst with their
-- flags, in order, as one change of dst (and one expunge of src for a
-- move). The POP3 retrieval mark (kRetr) is not copied: a copy is a new
-- message. Checks quota for a copy and the UID space before writing.
-- Returns the dst MODSEQ and the new uids.
local function copy_entries(src, uids, dst, move, logmax)
  local kFs, kIs = kFlags(src), kInfo(src)
  local ents = {}
  local bytes = 0
  for _, u in ipairs(uids) do
    local us = fmtint(u)
    local fv = redis.call('HGET', kFs, us) or '0'
    local iv = redis.call('HGET', kIs, us)
    local _, fl = parseflags(fv)
    local size, blob = infosize(iv)
    bytes = bytes + size
    ents[#ents + 1] = {fl, iv, blob}
  end
  local n = #ents
  if not move then
    local a = redis.call('HMGET', K_ACCT, 'lb', 'lm', 'ub', 'um')
    local lb, lm = tonumber(a[1] or '0'), tonumber(a[2] or '0')
    local ub, um = tonumber(a[3] or '0'), tonumber(a[4] or '0')
    if (lb > 0 and ub + bytes > lb) or (lm > 0 and um + n > lm) then fail('MSOVERQUOTA') end
  end
  local kd = kMb(dst)
  local first = tonumber(redis.call('HGET', kd, 'next'))
  if first + n - 1 > 4294967295 then fail('MSINVALID') end
  redis.call('HSET', kd, 'next', fmtint(first + n))
  local dms = redis.call('HINCRBY', kd, 'hms', 1)
  local kU, kF, kI, kM = kUIDs(dst), kFlags(dst), kInfo(dst), kModSeq(dst)
  local dests = {}
  local unseen = 0
  for i, e in ipairs(ents) do
    local nu = first + i - 1
    local ns = fmtint(nu)
    redis.call('ZADD', kU, nu, ns)
    redis.call('HSET', kF, ns, flagval(dms, e[1]))
    redis.call('HSET', kI, ns, e[2])
    redis.call('ZADD', kM, dms, ns)
    if not move then incref(e[3]) end
    if not hasflag(e[1], '\\Seen') then unseen = unseen + 1 end
    dests[i] = nu
  end
  redis.call('HINCRBY', kd, 'n', fmtint(n))
  redis.call('HINCRBY', kd, 'unseen', fmtint(unseen))
  redis.call('HINCRBY', kd, 'size', fmtint(bytes))
  if not move then
    redis.call('HINCRBY', K_ACCT, 'ub', fmtint(bytes))
    redis.call('HINCRBY', K_ACCT, 'um', fmtint(n))
  end
  publish(dst, 1, dms, uidstr(dests))
  if move then
    local sms = redis.call('HINCRBY', kMb(src), 'hms', 1)
    remove_entries(src, uids, sms, false, logmax)
    publish(src, 3, sms, uidstr(uids))
  end
  return dms, dests
end
local function create_mb(name, su)
  local id = redis.call('HINCRBY', K_ACCT, 'mbn', 1)
  local uv = redis.call('HINCRBY', K_ACCT, 'uvn', 1)
  redis.call('HSET', K_MBOXES, name, id)
  redis.call('HSET', kMb(id), 'name', name, 'uv', uv, 'next', 1, 'hms', 1,
    'n', 0, 'unseen', 0, 'size', 0, 'su', su, 'vtrim', 0)
  publish(id, 4, 1, '')
  return id, uv
end
-- drops every mailbox of the account and its entries; queue: queue the
-- blobs of the dropped entries for deletion.
local function drop_mailboxes(queue)
  local all = redis.call('HGETALL', K_MBOXES)
  local now = nil
  for i = 2, #all, 2 do
    local m = all[i]
    if queue then
      local infos = redis.call('HVALS', kInfo(m))
      for _, iv in ipairs(infos) do
        local _, blob = infosize(iv)
        if not now then now = now_ms() end
        decref(blob, now)
      end
    end
    local hms = redis.call('HGET', kMb(m), 'hms') or '0'
    redis.call('UNLINK', kMb(m), kUIDs(m), kFlags(m), kInfo(m), kModSeq(m), kVanished(m), kRetr(m), kApp(m), kAppAt(m))
    publish(m, 4, tonumber(hms), '')
  end
  redis.call('UNLINK', K_MBOXES)
end
`

// luaAliasLib reads the record's alias list.
const luaAliasLib = `
local function aliases()
  local out = {}
  for a in string.gmatch(redis.call('HGET', K_ACCT, 'al') or '', '%S+') do out[#out + 1] = a end
  return out
end
`

func accountScript(body string) *redis.Script {
	return redis.NewScript(luaKeyPrelude + luaLib + body)
}

var (
	// ARGV: login, pw, lb, lm, created ms, uvseed, then name, specialuse...
	scriptCreateAccount = accountScript(`
if redis.call('EXISTS', K_ACCT) == 1 then fail('MSEXISTS') end
redis.call('HSET', K_ACCT, 'login', ARGV[1], 'pw', ARGV[2], 'lb', ARGV[3], 'lm', ARGV[4],
  'ub', 0, 'um', 0, 'dis', 0, 'created', ARGV[5], 'pm', '', 'pd', 0, 'pl', 0,
  'sieve', '', 'mbn', 0, 'uvn', ARGV[6])
for i = 7, #ARGV, 2 do create_mb(ARGV[i], ARGV[i + 1]) end
return 1
`)

	// ARGV: field, value, ...  Returns the account hash.
	scriptUpdateAccount = accountScript(`
mustacct()
for i = 1, #ARGV, 2 do redis.call('HSET', K_ACCT, ARGV[i], ARGV[i + 1]) end
return redis.call('HGETALL', K_ACCT)
`)

	// ARGV: mode ("delete": drop the account, queueing its blobs; "reset":
	// drop the index and blob references, keep the account; "discard":
	// drop a half-created account).
	scriptDropAccount = accountScript(`
mustacct()
local mode = ARGV[1]
drop_mailboxes(mode == 'delete')
if mode == 'reset' then
  redis.call('UNLINK', K_BLOBREFS)
  redis.call('HSET', K_ACCT, 'ub', 0, 'um', 0)
  return 1
end
if mode == 'delete' then
  local refs = redis.call('HKEYS', K_BLOBREFS)
  if #refs > 0 then
    local now = now_ms()
    for _, b in ipairs(refs) do redis.call('ZADD', K_BLOBGC, now, b) end
  end
end
redis.call('UNLINK', K_ACCT, K_SUBS, K_BLOBREFS, K_FENCE, K_ALFENCE)
return 1
`)

	// Alias scripts: the record's field "al" lists the aliases, sorted,
	// space separated; K_ALFENCE holds revoked claims (keys.go).

	// ARGV: alias, claim. Commits a claimed alias to the record unless
	// another account revoked that claim (MSCONFLICT) or the record has
	// it already (MSEXISTS). An older revocation is dropped. Returns the
	// account hash.
	scriptCommitAlias = accountScript(luaAliasLib + `
mustacct()
local al, claim = ARGV[1], tonumber(ARGV[2])
local revoked = tonumber(redis.call('HGET', K_ALFENCE, al) or '0')
if revoked >= claim then fail('MSCONFLICT') end
if revoked > 0 then redis.call('HDEL', K_ALFENCE, al) end
local list = aliases()
for _, a in ipairs(list) do if a == al then fail('MSEXISTS') end end
list[#list + 1] = al
table.sort(list)
redis.call('HSET', K_ACCT, 'al', table.concat(list, ' '))
return redis.call('HGETALL', K_ACCT)
`)

	// ARGV: alias, claim. Revokes this account's claim on alias when its
	// record does not list the alias: a commit under that claim (or an
	// older one) then fails. Returns 0 if the account is gone, 1 when
	// revoked, 2 when the record lists the alias (the claim is live).
	scriptFenceAlias = accountScript(luaAliasLib + `
if redis.call('EXISTS', K_ACCT) == 0 then return 0 end
local al = ARGV[1]
for _, a in ipairs(aliases()) do if a == al then return 2 end end
local revoked = tonumber(redis.call('HGET', K_ALFENCE, al) or '0')
if tonumber(ARGV[2]) > revoked then redis.call('HSET', K_ALFENCE, al, ARGV[2]) end
return 1
`)

	// ARGV: alias. Takes alias out of the record (MSINVALID if it is not
	// there). Returns the account hash.
	scriptRemoveAlias = accountScript(luaAliasLib + `
mustacct()
local al = ARGV[1]
local list, kept = aliases(), {}
for _, a in ipairs(list) do if a ~= al then kept[#kept + 1] = a end end
if #kept == #list then fail('MSINVALID') end
if #kept == 0 then redis.call('HDEL', K_ACCT, 'al')
else redis.call('HSET', K_ACCT, 'al', table.concat(kept, ' ')) end
return redis.call('HGETALL', K_ACCT)
`)

	// ARGV: name, special use. Returns {id, uidvalidity, subscribed}.
	scriptCreateMailbox = accountScript(`
mustacct()
if redis.call('HEXISTS', K_MBOXES, ARGV[1]) == 1 then fail('MSEXISTS') end
local id, uv = create_mb(ARGV[1], ARGV[2])
return {id, uv, redis.call('SISMEMBER', K_SUBS, ARGV[1])}
`)

	// ARGV: name.
	scriptDeleteMailbox = accountScript(`
mustacct()
local m = redis.call('HGET', K_MBOXES, ARGV[1])
if not m then fail('MSNOMAILBOX') end
local infos = redis.call('HVALS', kInfo(m))
local bytes, now = 0, nil
for _, iv in ipairs(infos) do
  local size, blob = infosize(iv)
  bytes = bytes + size
  if not now then now = now_ms() end
  decref(blob, now)
end
redis.call('HINCRBY', K_ACCT, 'ub', fmtint(-bytes))
redis.call('HINCRBY', K_ACCT, 'um', fmtint(-#infos))
local hms = redis.call('HGET', kMb(m), 'hms') or '0'
redis.call('UNLINK', kMb(m), kUIDs(m), kFlags(m), kInfo(m), kModSeq(m), kVanished(m), kRetr(m), kApp(m), kAppAt(m))
redis.call('HDEL', K_MBOXES, ARGV[1])
publish(m, 4, tonumber(hms), '')
return 1
`)

	// ARGV: old, new, logmax.
	scriptRenameMailbox = accountScript(`
mustacct()
local old, new = ARGV[1], ARGV[2]
local id = redis.call('HGET', K_MBOXES, old)
if not id then fail('MSNOMAILBOX') end
if redis.call('HEXISTS', K_MBOXES, new) == 1 then fail('MSEXISTS') end
if old == 'INBOX' then
  local nid = create_mb(new, '')
  local uids = existing(id, {{1, 4294967295}})
  if #uids > 0 then copy_entries(id, uids, fmtint(nid), true, tonumber(ARGV[3])) end
  return 1
end
local all = redis.call('HGETALL', K_MBOXES)
local prefix = old .. '/'
local ren = {{old, new, id}}
local olds = {}
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #prefix) == prefix then olds[all[i]] = true end
end
for i = 1, #all, 2 do
  local n = all[i]
  if olds[n] then
    local nn = new .. string.sub(n, #old + 1)
    if redis.call('HEXISTS', K_MBOXES, nn) == 1 and not olds[nn] then fail('MSEXISTS') end
    ren[#ren + 1] = {n, nn, all[i + 1]}
  end
end
for _, r in ipairs(ren) do redis.call('HDEL', K_MBOXES, r[1]) end
for _, r in ipairs(ren) do
  redis.call('HSET', K_MBOXES, r[2], r[3])
  redis.call('HSET', kMb(r[3]), 'name', r[2])
  publish(r[3], 4, tonumber(redis.call('HGET', kMb(r[3]), 'hms')), '')
end
return 1
`)

	// ARGV: "n" (by name) or "i" (by id), name or id. Returns {id, name,
	// uv, next, hms, n, unseen, size, su, subscribed}.
	scriptGetMailbox = accountScript(`
mustacct()
local id = ARGV[2]
if ARGV[1] == 'n' then
  id = redis.call('HGET', K_MBOXES, ARGV[2])
  if not id then fail('MSNOMAILBOX') end
end
local v = redis.call('HMGET', kMb(id), 'name', 'uv', 'next', 'hms', 'n', 'unseen', 'size', 'su')
if not v[1] then fail('MSNOMAILBOX') end
local out = {id}
for i = 1, 8 do out[i + 1] = v[i] end
out[10] = redis.call('SISMEMBER', K_SUBS, v[1])
return out
`)

	// ARGV: name, "1" to subscribe or "0".
	scriptSubscribe = accountScript(`
mustacct()
if ARGV[2] == '1' then redis.call('SADD', K_SUBS, ARGV[1])
else redis.call('SREM', K_SUBS, ARGV[1]) end
return 1
`)

	// ARGV: mailbox id, upTo. Raises the mailbox's rec field to upTo if
	// lower and returns the field as it was, so concurrent claims hand out
	// disjoint UID ranges. Returns prev.
	scriptClaimRecent = accountScript(`
mustacct()
mustmb(ARGV[1])
local prev = tonumber(redis.call('HGET', kMb(ARGV[1]), 'rec') or '0')
if tonumber(ARGV[2]) > prev then redis.call('HSET', kMb(ARGV[1]), 'rec', ARGV[2]) end
return prev
`)

	// ARGV: mailbox, flags (space separated), info, blob, size, seen (1/0),
	// replay window ms. Returns {uid, modseq, uidvalidity}; a blob already
	// in mb:<M>:app returns what was returned then.
	scriptAppend = accountScript(`
mustacct()
local m = ARGV[1]
mustmb(m)
local kA = kApp(m)
local prev = redis.call('HGET', kA, ARGV[4])
if prev then
  -- A repeat of an append whose answer was lost: answer it again.
  local pu, pms, puv = string.match(prev, '^(%d+) (%d+) (%d+)$')
  return {tonumber(pu), tonumber(pms), tonumber(puv)}
end
local size = tonumber(ARGV[5])
local a = redis.call('HMGET', K_ACCT, 'lb', 'lm', 'ub', 'um')
local lb, lm = tonumber(a[1] or '0'), tonumber(a[2] or '0')
local ub, um = tonumber(a[3] or '0'), tonumber(a[4] or '0')
if (lb > 0 and ub + size > lb) or (lm > 0 and um + 1 > lm) then fail('MSOVERQUOTA') end
local km = kMb(m)
local v = redis.call('HMGET', km, 'next', 'uv')
local uid = tonumber(v[1])
if uid > 4294967295 then fail('MSINVALID') end
redis.call('HSET', km, 'next', fmtint(uid + 1))
local ms = redis.call('HINCRBY', km, 'hms', 1)
local us = fmtint(uid)
redis.call('ZADD', kUIDs(m), uid, us)
if ARGV[2] == '' then redis.call('HSET', kFlags(m), us, fmtint(ms))
else redis.call('HSET', kFlags(m), us, fmtint(ms) .. ' ' .. ARGV[2]) end
redis.call('HSET', kInfo(m), us, ARGV[3])
redis.call('ZADD', kModSeq(m), ms, us)
redis.call('HINCRBY', km, 'n', 1)
if ARGV[6] == '0' then redis.call('HINCRBY', km, 'unseen', 1) end
redis.call('HINCRBY', km, 'size', ARGV[5])
redis.call('HINCRBY', K_ACCT, 'ub', ARGV[5])
redis.call('HINCRBY', K_ACCT, 'um', 1)
incref(ARGV[4])
local now, kAt = now_ms(), kAppAt(m)
redis.call('HSET', kA, ARGV[4], us .. ' ' .. fmtint(ms) .. ' ' .. v[2])
redis.call('ZADD', kAt, now, ARGV[4])
local old = redis.call('ZRANGEBYSCORE', kAt, '-inf', now - tonumber(ARGV[7]), 'LIMIT', 0, 8)
if #old > 0 then
  redis.call('ZREM', kAt, unpack(old))
  redis.call('HDEL', kA, unpack(old))
end
publish(m, 1, ms, us)
return {uid, ms, tonumber(v[2])}
`)

	// ARGV: mailbox, op ("r", "a", "d"), unchangedsince, uid ranges,
	// flags... Returns {modseq, {uid, flags, ...}, {modified uid...},
	// {uid, modseq, flags, ...} of the entries already as asked}.
	scriptStoreFlags = accountScript(`
mustacct()
local m = ARGV[1]
mustmb(m)
local op = ARGV[2]
local unch = tonumber(ARGV[3])
local want, wantset = {}, {}
for i = 5, #ARGV do want[#want + 1] = ARGV[i]; wantset[ARGV[i]] = true end
local uids = existing(m, ranges(ARGV[4]))
local kF = kFlags(m)
local upd, modified, unchanged = {}, {}, {}
for _, u in ipairs(uids) do
  local us = fmtint(u)
  local fv = redis.call('HGET', kF, us)
  if fv then
    local ms, cur = parseflags(fv)
    if unch > 0 and ms > unch then
      modified[#modified + 1] = u
    else
      local curset = {}
      for _, f in ipairs(cur) do curset[f] = true end
      local new = {}
      if op == 'r' then
        new = want
      elseif op == 'a' then
        for _, f in ipairs(cur) do new[#new + 1] = f end
        for _, f in ipairs(want) do if not curset[f] then new[#new + 1] = f end end
      else
        for _, f in ipairs(cur) do if not wantset[f] then new[#new + 1] = f end end
      end
      local same = #new == #cur
      if same then
        for _, f in ipairs(new) do if not curset[f] then same = false; break end end
      end
      if not same then
        upd[#upd + 1] = {u, new, curset['\\Seen'] or false, hasflag(new, '\\Seen')}
      else
        unchanged[#unchanged + 1] = u
        unchanged[#unchanged + 1] = ms
        unchanged[#unchanged + 1] = table.concat(cur, ' ')
      end
    end
  end
end
local ms = 0
local out = {}
if #upd > 0 then
  local km = kMb(m)
  ms = redis.call('HINCRBY', km, 'hms', 1)
  local kM = kModSeq(m)
  local list = {}
  local unseen = 0
  for _, e in ipairs(upd) do
    local us = fmtint(e[1])
    redis.call('HSET', kF, us, flagval(ms, e[2]))
    redis.call('ZADD', kM, ms, us)
    if e[3] and not e[4] then unseen = unseen + 1 elseif e[4] and not e[3] then unseen = unseen - 1 end
    out[#out + 1] = e[1]
    out[#out + 1] = table.concat(e[2], ' ')
    list[#list + 1] = e[1]
  end
  if unseen ~= 0 then redis.call('HINCRBY', km, 'unseen', fmtint(unseen)) end
  publish(m, 2, ms, uidstr(list))
end
return {ms, out, modified, unchanged}
`)

	// ARGV: mailbox, uid ranges, logmax. Returns {modseq, {uid...}}.
	scriptExpunge = accountScript(`
mustacct()
local m = ARGV[1]
mustmb(m)
local uids = existing(m, ranges(ARGV[2]))
if #uids == 0 then return {tonumber(redis.call('HGET', kMb(m), 'hms')), {}} end
local ms = redis.call('HINCRBY', kMb(m), 'hms', 1)
local bytes = remove_entries(m, uids, ms, true, tonumber(ARGV[3]))
redis.call('HINCRBY', K_ACCT, 'ub', fmtint(-bytes))
redis.call('HINCRBY', K_ACCT, 'um', fmtint(-#uids))
publish(m, 3, ms, uidstr(uids))
return {ms, uids}
`)

	// ARGV: src, dst, uid ranges, move (1/0), logmax. Returns
	// {dst uidvalidity, modseq, {src uid...}, {dst uid...}}.
	scriptCopy = accountScript(`
mustacct()
local src, dst = ARGV[1], ARGV[2]
mustmb(src)
mustmb(dst)
local uv = tonumber(redis.call('HGET', kMb(dst), 'uv'))
local uids = existing(src, ranges(ARGV[3]))
if #uids == 0 then return {uv, 0, {}, {}} end
local dms, dests = copy_entries(src, uids, dst, ARGV[4] == '1', tonumber(ARGV[5]))
return {uv, dms, uids, dests}
`)

	// ARGV: mailbox, uid ranges, unix ms. Sets the retrieval mark of the
	// existing uids that have none (HSETNX); no MODSEQ, no event.
	// Returns how many it marked.
	scriptMarkRetrieved = accountScript(`
mustacct()
local m = ARGV[1]
mustmb(m)
local uids = existing(m, ranges(ARGV[2]))
local kR = kRetr(m)
local n = 0
for _, u in ipairs(uids) do
  n = n + redis.call('HSETNX', kR, fmtint(u), ARGV[3])
end
return n
`)

	// ARGV: lease hash, holder, ttl ms. Returns {token, expires ms}.
	scriptAcquireLease = accountScript(`
local k = kLease(ARGV[1])
if redis.call('EXISTS', k) == 1 then fail('MSLEASEHELD') end
local tok = redis.call('HINCRBY', K_FENCE, ARGV[1], 1)
redis.call('HSET', k, 'token', tok, 'holder', ARGV[2])
redis.call('PEXPIRE', k, ARGV[3])
return {tok, now_ms() + tonumber(ARGV[3])}
`)

	// ARGV: lease hash, token, ttl ms. Returns expires ms.
	scriptRenewLease = accountScript(`
local k = kLease(ARGV[1])
if redis.call('HGET', k, 'token') ~= ARGV[2] then fail('MSLEASELOST') end
redis.call('PEXPIRE', k, ARGV[3])
return now_ms() + tonumber(ARGV[3])
`)

	// ARGV: lease hash, token.
	scriptReleaseLease = accountScript(`
local k = kLease(ARGV[1])
if redis.call('HGET', k, 'token') == ARGV[2] then redis.call('DEL', k) return 1 end
return 0
`)
)

// Global scripts work on the {g} keys only, all of keys.global():
// KEYS[1] logins, KEYS[2] accounts, KEYS[3] aliases, KEYS[4] addrs (the
// local-part index), KEYS[5] the alias claim counter. An alias value is
// "<id> <claim>"; luaGlobalLib reads its id.
const luaGlobalLib = `
local function owner(v) if not v then return nil end return string.match(v, '^(%S+)') end
local function member(addr, id) return addr .. '\0' .. id end
`

func globalScript(body string) *redis.Script { return redis.NewScript(luaGlobalLib + body) }

var (
	// ARGV: login, id. Claims login for id, or fails with MSEXISTS when it
	// is a login or an alias already.
	scriptClaimLogin = globalScript(`
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return redis.error_reply('MSEXISTS alias')
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return redis.error_reply('MSEXISTS')
end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], 0, member(ARGV[1], ARGV[2]))
return 1
`)
	// ARGV: login, id, then the account's aliases. Drops the login and
	// each alias if it still names id, their local-part index members, and
	// the id.
	scriptUnclaimLogin = globalScript(`
local id = ARGV[2]
if redis.call('HGET', KEYS[1], ARGV[1]) == id then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], id)
redis.call('ZREM', KEYS[4], member(ARGV[1], id))
for i = 3, #ARGV do
  if owner(redis.call('HGET', KEYS[3], ARGV[i])) == id then redis.call('HDEL', KEYS[3], ARGV[i]) end
  redis.call('ZREM', KEYS[4], member(ARGV[i], id))
end
return 1
`)
	// ARGV: alias, id, expected. Claims alias for id under a new claim
	// number when it is free, already names id, or still holds exactly
	// the value expected (a claim the caller found stale and fenced).
	// Returns {"ok", claim}, {"login", owner id} or {"alias", current
	// value}.
	scriptClaimAlias = globalScript(`
local al, id, expect = ARGV[1], ARGV[2], ARGV[3]
local lid = redis.call('HGET', KEYS[1], al)
if lid then return {'login', lid} end
local cur = redis.call('HGET', KEYS[3], al)
local cid = owner(cur)
if cur and cid ~= id and cur ~= expect then return {'alias', cur} end
if cur and cid ~= id then redis.call('ZREM', KEYS[4], member(al, cid)) end
local claim = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[3], al, id .. ' ' .. claim)
redis.call('ZADD', KEYS[4], 0, member(al, id))
return {'ok', tostring(claim)}
`)
	// ARGV: alias, id, value. Drops alias if it holds exactly value, or,
	// with value empty, if it names id; then id's local-part member.
	scriptReleaseAlias = globalScript(`
local al, id, value = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('HGET', KEYS[3], al)
if cur and ((value ~= '' and cur == value) or (value == '' and owner(cur) == id)) then
  redis.call('HDEL', KEYS[3], al)
end
if owner(redis.call('HGET', KEYS[3], al)) ~= id then redis.call('ZREM', KEYS[4], member(al, id)) end
return 1
`)
)
