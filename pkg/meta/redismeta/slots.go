package redismeta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Slots (meta.Slots): one hash per key, <p>slot:<key>, each in its own
// cluster slot, with one field per holder whose value is
// "<count> <expiry unix ms>". Expiry is by Redis server time (TIME inside
// the scripts), never the pods' clocks, so pods whose clocks differ agree
// on what is live. Every script works on its one key only: it drops the
// lapsed fields it meets and sets the key's PEXPIRE to the longest expiry
// left, so a key whose holders all died vanishes by itself. RefreshSlots
// over many keys pipelines one script per key (no cross-slot script).

// luaSlotLib is shared by the slot scripts. KEYS[1] is the slot key.
const luaSlotLib = `
local K = KEYS[1]
local function fmtint(n) return string.format('%d', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Sums the live counts of K, dropping lapsed (or malformed) fields when
-- prune is true. Returns the total, the longest expiry among holders
-- other than holder, and holder's count and expiry (0, 0 if it has none).
local function scan(now, holder, prune)
  local all = redis.call('HGETALL', K)
  local total, other, mine, myexp = 0, 0, 0, 0
  for i = 1, #all, 2 do
    local c, e = string.match(all[i + 1], '^(%d+) (%d+)$')
    c, e = tonumber(c), tonumber(e)
    if not c or e <= now then
      if prune then redis.call('HDEL', K, all[i]) end
    else
      total = total + c
      if all[i] == holder then mine, myexp = c, e
      elseif e > other then other = e end
    end
  end
  return total, other, mine, myexp
end
-- Sets holder's field (or drops it at count 0) and the key's expiry to
-- the longest one left.
local function put(now, holder, count, exp, other)
  if count > 0 then
    redis.call('HSET', K, holder, fmtint(count) .. ' ' .. fmtint(exp))
    if exp > other then other = exp end
  else
    redis.call('HDEL', K, holder)
  end
  if other > now and redis.call('EXISTS', K) == 1 then
    redis.call('PEXPIRE', K, fmtint(other - now))
  end
end
`

func slotScript(body string) *redis.Script { return redis.NewScript(luaSlotLib + body) }

var (
	// ARGV: holder, limit, ttl ms. Returns {1, total} when acquired,
	// {0, total} at the limit.
	scriptAcquireSlot = slotScript(`
local now = now_ms()
local total, other, mine = scan(now, ARGV[1], true)
if total >= tonumber(ARGV[2]) then return {0, total} end
put(now, ARGV[1], mine + 1, now + tonumber(ARGV[3]), other)
return {1, total + 1}
`)

	// ARGV: holder. Returns holder's count left.
	scriptReleaseSlot = slotScript(`
local now = now_ms()
local _, other, mine, myexp = scan(now, ARGV[1], true)
if mine == 0 then return 0 end
put(now, ARGV[1], mine - 1, myexp, other)
return mine - 1
`)

	// ARGV: holder, ttl ms. Returns 1 if holder had a live count.
	scriptRefreshSlot = slotScript(`
local now = now_ms()
local _, other, mine = scan(now, ARGV[1], true)
if mine == 0 then return 0 end
put(now, ARGV[1], mine, now + tonumber(ARGV[2]), other)
return 1
`)

	// No ARGV; writes nothing. Returns the live total.
	scriptSlotTotal = slotScript(`
local total = scan(now_ms(), '', false)
return total
`)
)

// refreshChunk bounds the scripts of one RefreshSlots pipeline.
const refreshChunk = 512

func slotArgs(op, key, holder string) error {
	if key == "" || holder == "" {
		return fmt.Errorf("%s %q for %q: %w: needs a key and a holder", op, key, holder, meta.ErrInvalidArgument)
	}
	return nil
}

// AcquireSlot takes one of key's slots for holder in one script.
func (s *Store) AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error) {
	if err := slotArgs("acquire slot", key, holder); err != nil {
		return 0, err
	}
	ms, err := ttlMillis(ttl)
	if err != nil {
		return 0, fmt.Errorf("acquire slot %q: %w", key, err)
	}
	if limit < 1 {
		return 0, fmt.Errorf("acquire slot %q: %w: limit %d", key, meta.ErrInvalidArgument, limit)
	}
	res, err := scriptAcquireSlot.Run(ctx, s.sc, []string{s.k.slot(key)}, holder, limit, ms).Int64Slice()
	if err != nil {
		return 0, wrap(err, "acquire slot %q", key)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("acquire slot %q: script answered %v", key, res)
	}
	if res[0] == 0 {
		return res[1], fmt.Errorf("acquire slot %q: %w (%d of %d)", key, meta.ErrLimit, res[1], limit)
	}
	return res[1], nil
}

// ReleaseSlot gives back one of holder's slots of key.
func (s *Store) ReleaseSlot(ctx context.Context, key, holder string) error {
	if err := slotArgs("release slot", key, holder); err != nil {
		return err
	}
	if err := scriptReleaseSlot.Run(ctx, s.sc, []string{s.k.slot(key)}, holder).Err(); err != nil {
		return wrap(err, "release slot %q", key)
	}
	return nil
}

// RefreshSlots runs one script per key, pipelined (per node on a
// cluster); scripts the server has not cached are sent again in full.
func (s *Store) RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error {
	if holder == "" {
		return fmt.Errorf("refresh slots: %w: empty holder", meta.ErrInvalidArgument)
	}
	ms, err := ttlMillis(ttl)
	if err != nil {
		return fmt.Errorf("refresh slots of %q: %w", holder, err)
	}
	for _, k := range keys {
		if err := slotArgs("refresh slot", k, holder); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(keys, refreshChunk) {
		if err := s.refreshSlots(ctx, holder, chunk, ms); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) refreshSlots(ctx context.Context, holder string, keys []string, ms int64) error {
	run := func(missing []int, eval bool) ([]int, error) {
		cmds := make([]*redis.Cmd, len(missing))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, ki := range missing {
				ks := []string{s.k.slot(keys[ki])}
				if eval {
					cmds[i] = scriptRefreshSlot.Eval(ctx, p, ks, holder, ms)
				} else {
					cmds[i] = scriptRefreshSlot.EvalSha(ctx, p, ks, holder, ms)
				}
			}
			return nil
		})
		if err == nil {
			return nil, nil
		}
		var again []int
		for i, c := range cmds {
			switch err := c.Err(); {
			case err == nil:
			case !eval && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")):
				again = append(again, missing[i])
			default:
				return nil, wrap(err, "refresh slot %q of %q", keys[missing[i]], holder)
			}
		}
		return again, nil
	}
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	again, err := run(all, false)
	if err != nil || len(again) == 0 {
		return err
	}
	_, err = run(again, true)
	return err
}

// SlotTotal sums the live counts of key; it writes nothing.
func (s *Store) SlotTotal(ctx context.Context, key string) (int64, error) {
	if key == "" {
		return 0, fmt.Errorf("slot total: %w: empty key", meta.ErrInvalidArgument)
	}
	n, err := scriptSlotTotal.Run(ctx, s.sc, []string{s.k.slot(key)}).Int64()
	if err != nil {
		return 0, wrap(err, "slot total %q", key)
	}
	return n, nil
}
