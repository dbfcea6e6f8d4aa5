package redismeta

// Key schema. Every Redis key of the store is built here, and nowhere else.
//
// <p> is Config.KeyPrefix (may be empty); it goes before any hash tag.
//
// Global keys share the hash tag {g}, so that one script can read and
// write them together (they live in one cluster slot):
//
//	<p>{g}:ids:account   string  INCR counter of account ids (ids are decimal)
//	<p>{g}:logins        hash    lower-cased login -> account id
//	<p>{g}:accounts      set     account ids
//	<p>{g}:aliases       hash    lower-cased alias -> "<account id> <claim>",
//	                             claim a number from {g}:ids:alias, new
//	                             for every claim of the alias
//	<p>{g}:ids:alias     string  INCR counter of alias claims
//	<p>{g}:addrs         zset    every login and alias as the member
//	                             "<address>\x00<account id>", all scored 0:
//	                             the local-part index. ZRANGEBYLEX over
//	                             ["<local>@", "<local>A") lists the
//	                             addresses with that local part ('A' is
//	                             the byte after '@').
//
// An address is the login or the alias of at most one account: the
// claim scripts (scriptClaimLogin, scriptClaimAlias) check both hashes in
// the {g} slot. An alias entry counts only while the account it names
// lists the alias in its record (field "al"); see aliases.go for the
// protocol between the two slots and what a crash can leave.
//
// Per-account keys share the hash tag {a:<id>}, so that one Lua script can
// change an account atomically on Redis Cluster. Scripts get the account's
// base key "<p>{a:<id>}:" as KEYS[1] and build the other keys of that
// account from it with the Lua functions of luaKeyPrelude, which mirror the
// Go builders below (one slot, declared through KEYS[1]):
//
//	<b>acct              hash    the account record: login, pw (PHC hash),
//	                             lb/lm (quota limits bytes/messages),
//	                             ub/um (usage bytes/messages), dis ("1"
//	                             when disabled), created (unix ms),
//	                             pm/pd/pl (POP3 mode, keep days, login
//	                             delay), sieve, mbn (mailbox id counter),
//	                             uvn (UIDVALIDITY counter, seeded with the
//	                             creation time in seconds)
//	<b>mboxes            hash    mailbox name -> mailbox id
//	<b>subs              set     subscribed names (existing or not)
//	<b>mb:<M>            hash    mailbox M: name, uv (UIDVALIDITY), next
//	                             (UIDNEXT), hms (HIGHESTMODSEQ), n
//	                             (messages), unseen, size, su (special
//	                             use), vtrim (highest expunge MODSEQ
//	                             trimmed from the vanished log, 0 if none),
//	                             rec (\Recent mark: highest UID handed out
//	                             by ClaimRecent, absent means 0)
//	<b>mb:<M>:uids       zset    uid, scored by uid
//	<b>mb:<M>:flags      hash    uid -> "<modseq> <flag> <flag>..."
//	<b>mb:<M>:info       hash    uid -> packed entry info (see packInfo):
//	                             internal date, size, blob id, structure
//	<b>mb:<M>:modseq     zset    uid, scored by its MODSEQ (ChangesSince)
//	<b>mb:<M>:vanished   zset    expunged uid, scored by the expunge MODSEQ,
//	                             trimmed to Config.ChangeLogMax entries
//	<b>mb:<M>:retr       hash    uid -> unix ms of the first POP3 retrieval
//	                             (MarkRetrieved; HSETNX keeps the first).
//	                             Apart from flags/info: marking bumps no
//	                             MODSEQ, and COPY/MOVE, which copy info,
//	                             do not carry it. Fields go with their
//	                             entry at expunge.
//	<b>mb:<M>:app        hash    blob id -> "<uid> <modseq> <uidvalidity>"
//	                             of the entry AppendEntry made with it:
//	                             a repeat of the append answers from here
//	                             (meta.AppendReplayWindow). Kept after the
//	                             entry is expunged, until it ages out.
//	<b>mb:<M>:appat      zset    blob id of mb:<M>:app, scored by the time
//	                             (Redis server ms) of the append; each
//	                             append drops a few that aged out
//	<b>blobrefs          hash    blob id -> number of entries referring to it
//	<b>blobgc            zset    blob id, scored by the time (Redis server
//	                             ms) it lost its last reference
//	<b>lease:<H>         hash    lease H (hex SHA-256 of its name, the name
//	                             is data): token, holder; PX expiry
//	<b>fence             hash    H -> last fencing token issued for lease H
//	<b>events            channel sharded pub/sub channel of change events
//	                             (SPUBLISH, see decodeEvent)
//	<b>alfence           hash    alias -> the highest claim number of this
//	                             account's claims on it that another
//	                             account revoked (took over); a commit of
//	                             the alias under a claim not above it fails
//
// The account record's field "al" holds its aliases, sorted, separated by
// single spaces (aliases never contain white space).
//
// Shared counters are single keys, one slot each:
//
//	<p>ctr:<key>         string  INCRBY counter with a PEXPIRE window
//
// Slots (slots.go) are single keys too, one slot each:
//
//	<p>slot:<key>        hash    holder -> "<count> <expiry unix ms>"
//	                             (Redis server time); PEXPIRE the longest
//	                             live expiry
//
// Mailbox names and flags are data, never key parts; account ids are
// checked to be [0-9a-z]+ before they are put into a key.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/mailstore/mailstore/pkg/mail"
)

// keys builds key names under one prefix.
type keys struct{ prefix string }

func (k keys) accountIDs() string { return k.prefix + "{g}:ids:account" }
func (k keys) logins() string     { return k.prefix + "{g}:logins" }
func (k keys) accounts() string   { return k.prefix + "{g}:accounts" }
func (k keys) aliases() string    { return k.prefix + "{g}:aliases" }
func (k keys) aliasIDs() string   { return k.prefix + "{g}:ids:alias" }
func (k keys) addrs() string      { return k.prefix + "{g}:addrs" }

// global are the {g} keys every global script gets, in this order.
func (k keys) global() []string {
	return []string{k.logins(), k.accounts(), k.aliases(), k.addrs(), k.aliasIDs()}
}
func (k keys) counter(n string) string { return k.prefix + "ctr:" + n }
func (k keys) slot(n string) string    { return k.prefix + "slot:" + n }

// base is the per-account base key, KEYS[1] of every account script.
func (k keys) base(a mail.AccountID) string { return k.prefix + "{a:" + string(a) + "}:" }

func (k keys) account(a mail.AccountID) string   { return k.base(a) + "acct" }
func (k keys) mailboxes(a mail.AccountID) string { return k.base(a) + "mboxes" }
func (k keys) subs(a mail.AccountID) string      { return k.base(a) + "subs" }
func (k keys) blobRefs(a mail.AccountID) string  { return k.base(a) + "blobrefs" }
func (k keys) blobGC(a mail.AccountID) string    { return k.base(a) + "blobgc" }
func (k keys) fence(a mail.AccountID) string     { return k.base(a) + "fence" }
func (k keys) events(a mail.AccountID) string    { return k.base(a) + "events" }
func (k keys) alFence(a mail.AccountID) string   { return k.base(a) + "alfence" }

func (k keys) lease(a mail.AccountID, name string) string {
	return k.base(a) + "lease:" + leaseHash(name)
}

func (k keys) mailbox(a mail.AccountID, m mail.MailboxID) string {
	return k.base(a) + "mb:" + strconv.FormatUint(uint64(m), 10)
}
func (k keys) mbUIDs(a mail.AccountID, m mail.MailboxID) string   { return k.mailbox(a, m) + ":uids" }
func (k keys) mbFlags(a mail.AccountID, m mail.MailboxID) string  { return k.mailbox(a, m) + ":flags" }
func (k keys) mbInfo(a mail.AccountID, m mail.MailboxID) string   { return k.mailbox(a, m) + ":info" }
func (k keys) mbModSeq(a mail.AccountID, m mail.MailboxID) string { return k.mailbox(a, m) + ":modseq" }
func (k keys) mbVanished(a mail.AccountID, m mail.MailboxID) string {
	return k.mailbox(a, m) + ":vanished"
}
func (k keys) mbRetrieved(a mail.AccountID, m mail.MailboxID) string {
	return k.mailbox(a, m) + ":retr"
}
func (k keys) mbAppended(a mail.AccountID, m mail.MailboxID) string {
	return k.mailbox(a, m) + ":app"
}
func (k keys) mbAppendedAt(a mail.AccountID, m mail.MailboxID) string {
	return k.mailbox(a, m) + ":appat"
}

// leaseHash keeps lease names (data) out of key names.
func leaseHash(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:16])
}

// validAccountID reports whether a is an id this store could have issued
// and is safe inside a hash tag.
func validAccountID(a mail.AccountID) bool {
	if len(a) == 0 || len(a) > 64 {
		return false
	}
	for _, c := range []byte(a) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// luaKeyPrelude defines, for every script, the key builders over KEYS[1]
// (the account base key). It must produce exactly what the Go builders
// above produce.
var luaKeyPrelude = fmt.Sprintf(`
local B = KEYS[1]
local K_ACCT = B .. %q
local K_MBOXES = B .. %q
local K_SUBS = B .. %q
local K_BLOBREFS = B .. %q
local K_BLOBGC = B .. %q
local K_FENCE = B .. %q
local K_EVENTS = B .. %q
local K_ALFENCE = B .. %q
local function kMb(m) return B .. 'mb:' .. m end
local function kUIDs(m) return kMb(m) .. ':uids' end
local function kFlags(m) return kMb(m) .. ':flags' end
local function kInfo(m) return kMb(m) .. ':info' end
local function kModSeq(m) return kMb(m) .. ':modseq' end
local function kVanished(m) return kMb(m) .. ':vanished' end
local function kRetr(m) return kMb(m) .. ':retr' end
local function kApp(m) return kMb(m) .. ':app' end
local function kAppAt(m) return kMb(m) .. ':appat' end
local function kLease(h) return B .. 'lease:' .. h end
`, "acct", "mboxes", "subs", "blobrefs", "blobgc", "fence", "events", "alfence")
