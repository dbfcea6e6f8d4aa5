// Package meta is the contract of the metadata store: accounts, mailboxes,
// the message index with flags and MODSEQs, the change log and change
// events, leases, shared counters and slots (counting semaphores).
//
// It is split into small role interfaces (Accounts, Mailboxes, Messages,
// Changes, Feed, Leases, Counters, Slots, Blobs) so that each consumer asks for
// what it uses; Store joins them. Every backend (localmeta, redismeta,
// grpcmeta) passes the conformance suite in metatest.
//
// Invariants every backend keeps, each mutation atomically:
//   - UIDs are strictly increasing per mailbox and never reused; UIDNEXT
//     only grows. UIDVALIDITY changes only when a mailbox is recreated.
//   - Every change to a mailbox (append, flags, expunge, copy/move in or
//     out) allocates a new MODSEQ greater than any before in that mailbox,
//     records it in the change log and publishes an Event after committing.
//   - Mailbox counters (Messages, Unseen, Size, UIDNext, HighestModSeq) and
//     account usage (quota) are updated in the same step as the change, so
//     reading them is O(1).
//   - An entry never points at a blob that is not referenced: entries share
//     blobs through reference counts kept by the store; when the last entry
//     of a blob goes, the blob is queued for deletion (Blobs).
package meta

import (
	"context"
	"errors"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

// Sentinel errors. Backends wrap them with what was being attempted; callers
// test with errors.Is. The gRPC adapters carry them across the wire.
var (
	ErrNoSuchAccount   = errors.New("no such account")
	ErrNoSuchMailbox   = errors.New("no such mailbox")
	ErrNoSuchMessage   = errors.New("no such message")
	ErrExists          = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrOverQuota       = errors.New("over quota")
	// ErrConflict: an UNCHANGEDSINCE condition or a fencing token failed.
	ErrConflict = errors.New("conflict")
	// ErrLeaseHeld: another holder has the lease.
	ErrLeaseHeld = errors.New("lease held")
	// ErrLeaseLost: the lease expired or was taken over; stop acting on it.
	ErrLeaseLost = errors.New("lease lost")
	// ErrAuthFailed: unknown login, wrong password, or disabled account.
	// Callers must not tell these apart to a client.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrDisabled: the account is disabled.
	ErrDisabled = errors.New("account disabled")
	// ErrUnavailable: the backing store (Redis, S3, a service) is down or
	// timed out. Temporary: retry later.
	ErrUnavailable = errors.New("metadata store unavailable")
	// ErrPermission: the request is not allowed (e.g. deleting INBOX).
	ErrPermission = errors.New("not permitted")
	// ErrLimit: a slot's limit is reached (Slots.AcquireSlot).
	ErrLimit = errors.New("limit reached")
)

// Store is the whole metadata contract.
type Store interface {
	Accounts
	Mailboxes
	Messages
	Changes
	Feed
	Leases
	Counters
	Slots
	Blobs
	// Close releases connections; it does not delete data.
	Close() error
}

// ---- Accounts ----

// POP3Policy says what becomes of messages a POP3 client deleted or
// retrieved (RFC 2449 EXPIRE).
type POP3Policy struct {
	// Mode is one of POP3Delete (the default: DELE+QUIT expunges),
	// POP3KeepForever (DELE+QUIT only hides the message from POP3) and
	// POP3KeepDays (hidden from POP3, expunged KeepDays after first
	// retrieval by the reaper).
	Mode     string
	KeepDays int
	// LoginDelay in seconds between logins, 0 for none.
	LoginDelay int
}

// POP3 policy modes. The empty mode means the server-wide default.
const (
	POP3Default     = ""
	POP3Delete      = "delete"
	POP3KeepForever = "forever"
	POP3KeepDays    = "days"
)

// Quota limits and usage. A zero limit means unlimited.
type Quota struct {
	LimitBytes    int64
	LimitMessages int64
	UsedBytes     int64
	UsedMessages  int64
}

// Account is an account record.
type Account struct {
	ID    mail.AccountID
	Login string // canonical login (lower case)
	// Aliases are further addresses that deliver to the account (LMTP
	// RCPT TO), canonical like the login (lower case, trimmed), each of
	// the form local@domain, sorted. Never a login of any account.
	Aliases []string
	// PasswordHash is a PHC string (argon2id); never sent to gateways.
	PasswordHash string
	Quota        Quota
	POP3         POP3Policy
	Disabled     bool
	Created      time.Time
	// SieveScript is the active Sieve script, empty for none.
	SieveScript string
}

// NewAccount is what CreateAccount needs.
type NewAccount struct {
	Login        string
	PasswordHash string
	Quota        Quota // limits only
}

// AccountUpdate changes the non-nil fields of an account.
type AccountUpdate struct {
	PasswordHash *string
	LimitBytes   *int64
	LimitMsgs    *int64
	Disabled     *bool
	POP3         *POP3Policy
	SieveScript  *string
}

// Accounts manages account records. Logins are case-insensitive and
// unique; logins and aliases share one namespace: an address is the login
// or an alias of at most one account.
type Accounts interface {
	// CreateAccount creates the account with the DefaultMailboxes.
	// ErrExists if the login is taken, as a login or as an alias;
	// ErrInvalidArgument for an empty or malformed login.
	CreateAccount(ctx context.Context, a NewAccount) (Account, error)
	// Account returns the record by id, or ErrNoSuchAccount.
	Account(ctx context.Context, id mail.AccountID) (Account, error)
	// LookupLogin returns the record by login (case-insensitive), or
	// ErrNoSuchAccount.
	LookupLogin(ctx context.Context, login string) (Account, error)
	// ListAccounts returns every account, ordered by login.
	ListAccounts(ctx context.Context) ([]Account, error)
	// UpdateAccount applies u and returns the new record.
	UpdateAccount(ctx context.Context, id mail.AccountID, u AccountUpdate) (Account, error)
	// DeleteAccount removes the account and its whole index; its blobs are
	// queued for deletion (Blobs.PendingBlobs then lists them all). Its
	// login and aliases become free.
	DeleteAccount(ctx context.Context, id mail.AccountID) error
	// AddAlias gives the account one more address and returns the new
	// record. The alias is canonicalized like a login (lower case,
	// trimmed) and must be local@domain with one '@' and both parts
	// non-empty (CheckAlias), else ErrInvalidArgument. ErrExists if the
	// address is already any account's login or alias, this account's
	// own included; ErrNoSuchAccount. When two accounts add the same
	// address at once, exactly one succeeds.
	AddAlias(ctx context.Context, id mail.AccountID, alias string) (Account, error)
	// RemoveAlias takes an alias away from the account and returns the new
	// record: ErrNoSuchAccount for an unknown id, ErrInvalidArgument ("not
	// an alias of this account") when the account does not have it.
	RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (Account, error)
	// LookupAddress finds the account an address delivers to (the LMTP
	// RCPT TO), case-insensitively: the account whose login or alias it
	// is. An address without '@' (a bare local part) names the account
	// whose login is exactly that, or else the single account that has a
	// login or alias with that local part (LocalPart). ErrNoSuchAccount
	// when none does; when several do, ErrNoSuchAccount wrapped with a
	// message containing "ambiguous". Backends keep indexes: the cost
	// does not grow with the number of accounts. Subaddresses
	// (user+detail) are the caller's business.
	LookupAddress(ctx context.Context, addr string) (Account, error)
	// ResetIndex removes every mailbox and entry of the account but keeps
	// the account record, then recreates nothing: it is the first step of
	// recovery from the blob store. Blob references are dropped without
	// queueing the blobs for deletion.
	ResetIndex(ctx context.Context, id mail.AccountID) error
}

// ---- Mailboxes ----

// Mailbox is a mailbox with its O(1) counters.
type Mailbox struct {
	ID            mail.MailboxID
	Name          string // canonical UTF-8 name, '/' delimited
	UIDValidity   uint32
	UIDNext       mail.UID
	HighestModSeq mail.ModSeq
	Messages      int64
	Unseen        int64
	Size          int64 // sum of entry sizes
	SpecialUse    string
	Subscribed    bool
}

// Mailboxes manages the mailbox tree. Names are canonical per
// mail.CanonicalMailboxName; parents need not exist (IMAP lets a client
// create "a/b/c" alone; the gateway creates missing parents itself).
type Mailboxes interface {
	// CreateMailbox creates name with a fresh UIDVALIDITY (greater than any
	// this account used for that name before) and UIDNEXT 1. ErrExists if
	// it exists; ErrInvalidArgument for a bad name or special use.
	CreateMailbox(ctx context.Context, acct mail.AccountID, name, specialUse string) (Mailbox, error)
	// DeleteMailbox deletes the mailbox and expunges its entries.
	// ErrPermission for INBOX. Children are left alone (the gateway applies
	// the RFC 3501 rules about \Noselect parents).
	DeleteMailbox(ctx context.Context, acct mail.AccountID, name string) error
	// RenameMailbox renames oldName and every mailbox below it, keeping
	// ids, UIDVALIDITY and entries. Renaming INBOX instead creates newName
	// and moves every INBOX entry into it (RFC 3501), leaving INBOX empty;
	// its children are not moved. ErrExists if newName (or a renamed child)
	// exists; ErrNoSuchMailbox if oldName does not.
	RenameMailbox(ctx context.Context, acct mail.AccountID, oldName, newName string) error
	// Mailbox returns one mailbox by name, or ErrNoSuchMailbox.
	Mailbox(ctx context.Context, acct mail.AccountID, name string) (Mailbox, error)
	// MailboxByID returns one mailbox by id, or ErrNoSuchMailbox.
	MailboxByID(ctx context.Context, acct mail.AccountID, id mail.MailboxID) (Mailbox, error)
	// ListMailboxes returns every mailbox of the account ordered by name.
	ListMailboxes(ctx context.Context, acct mail.AccountID) ([]Mailbox, error)
	// SetSubscribed sets the subscription of name. A subscription may name
	// a mailbox that does not exist (RFC 3501); those are kept apart and
	// listed by Subscriptions.
	SetSubscribed(ctx context.Context, acct mail.AccountID, name string, subscribed bool) error
	// Subscriptions lists every subscribed name, existing or not, sorted.
	Subscriptions(ctx context.Context, acct mail.AccountID) ([]string, error)
	// ClaimRecent serves \Recent for IMAP4rev1 (RFC 3501 2.3.2: a message
	// is recent in exactly one session, the first told about it, whatever
	// gateway pod that session is on). It atomically sets the mailbox's
	// recent mark to max(mark, upTo) and returns the mark before; the
	// caller treats the UIDs in (previous, upTo] as \Recent for itself, so
	// concurrent claimers never share a UID. A new mailbox starts at 0.
	// ErrNoSuchMailbox, ErrNoSuchAccount as usual.
	ClaimRecent(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) (mail.UID, error)
}

// ---- Messages ----

// Entry is one message in one mailbox.
type Entry struct {
	UID          mail.UID
	ModSeq       mail.ModSeq
	Flags        []mail.Flag // sorted, unique, canonical; never \Recent
	InternalDate time.Time
	Size         int64
	Blob         mail.BlobID
	// Structure is the encoded parse of the message (envelope, body
	// structure with part offsets), computed once at ingest; opaque to the
	// metadata store.
	Structure []byte
	// Retrieved is when a POP3 client first retrieved the message (zero
	// if never), set by MarkRetrieved; the POP3 reaper expunges by it
	// (POP3KeepDays). Stored with millisecond precision. It is not part of
	// the IMAP view: setting it allocates no MODSEQ and publishes no
	// event, and Copy/Move do not carry it (a copy is a new message).
	Retrieved time.Time
}

// Fields selects what ListEntries fills in besides UID and ModSeq.
type Fields uint8

const (
	FieldFlags Fields = 1 << iota
	FieldInfo         // InternalDate, Size, Blob, Retrieved
	FieldStructure
	FieldAll = FieldFlags | FieldInfo | FieldStructure
)

// NewEntry is what AppendEntry stores.
type NewEntry struct {
	Flags        []mail.Flag
	InternalDate time.Time
	Size         int64
	Blob         mail.BlobID
	Structure    []byte
}

// Appended reports where an entry landed.
type Appended struct {
	Mailbox     mail.MailboxID
	UIDValidity uint32
	UID         mail.UID
	ModSeq      mail.ModSeq
}

// FlagOp is how StoreFlags changes flags.
type FlagOp uint8

const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// FlagChange is a STORE.
type FlagChange struct {
	UIDs  mail.UIDSet
	Op    FlagOp
	Flags []mail.Flag
	// UnchangedSince, when non-zero, applies the change only to entries
	// whose ModSeq <= UnchangedSince (RFC 7162); the others are reported in
	// FlagResult.Modified and left alone.
	UnchangedSince mail.ModSeq
}

// FlagResult reports a STORE.
type FlagResult struct {
	// Updated lists every entry whose flags changed, with its new ModSeq
	// and flags. Entries whose flags were already as asked are not
	// updated, get no new MODSEQ and are not listed.
	Updated []Entry
	// Unchanged lists the other entries named whose flags were already as
	// asked, with their ModSeq and flags as read in the same atomic step,
	// so that a STORE answers with the state it acted on rather than with
	// a later read that another session's change may have overtaken.
	Unchanged []Entry
	// Modified lists UIDs that failed the UnchangedSince condition.
	Modified mail.UIDSet
}

// Copied reports a COPY or MOVE (RFC 4315 COPYUID).
type Copied struct {
	UIDValidity uint32 // of the destination
	Source      []mail.UID
	Dest        []mail.UID // Dest[i] is the copy of Source[i]
	ModSeq      mail.ModSeq
}

// AppendReplayWindow is how long AppendEntry at least remembers a blob
// appended to a mailbox, so that a retry of the same append is answered without a
// second entry.
const AppendReplayWindow = 10 * time.Minute

// Messages manages entries. Mailboxes are named by id: a gateway resolves a
// name once at SELECT and keeps using the id, so a rename does not break
// it. ErrNoSuchMailbox if the id no longer exists.
type Messages interface {
	// AppendEntry adds one entry, checking quota: ErrOverQuota if the
	// account's byte or message limit would be exceeded. It is idempotent
	// per mailbox and blob for at least AppendReplayWindow: a second call naming a
	// Blob already appended to mbox within the window changes nothing and
	// returns the first call's Appended, even if that entry has been
	// expunged since. A caller that lost the answer (ErrUnavailable, a
	// deadline) retries with the same blob and learns the outcome instead
	// of storing the message twice.
	AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e NewEntry) (Appended, error)
	// ListEntries returns the entries with UIDs in uids, in UID order, with
	// the asked-for fields. With changedSince > 0, only entries whose
	// ModSeq > changedSince.
	ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f Fields, changedSince mail.ModSeq) ([]Entry, error)
	// StoreFlags changes flags of existing entries; UIDs that do not
	// exist are ignored.
	StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, c FlagChange) (FlagResult, error)
	// Expunge removes the entries with UIDs in uids (those that exist) and
	// returns their UIDs in order, with the MODSEQ of the expunge.
	Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error)
	// Copy copies entries (sharing their blobs) to dst in UID order, with
	// their flags, checking quota.
	Copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (Copied, error)
	// Move is Copy then Expunge of the sources, atomically (RFC 6851).
	Move(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (Copied, error)
	// MarkRetrieved records at as the first POP3 retrieval (Entry.Retrieved)
	// of every existing entry in uids that has none; entries already
	// marked keep their time, UIDs that do not exist are ignored. Kept
	// with millisecond precision (at is truncated); an at not after the
	// Unix epoch is ErrInvalidArgument. It allocates no MODSEQ and
	// publishes no event.
	MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error
}

// ---- Changes ----

// ChangeSet is what changed in a mailbox after a MODSEQ.
type ChangeSet struct {
	// HighestModSeq of the mailbox when read.
	HighestModSeq mail.ModSeq
	// Changed lists existing entries with ModSeq > since (appended or
	// with changed flags), in UID order, with FieldFlags.
	Changed []Entry
	// Vanished lists UIDs expunged after since.
	Vanished mail.UIDSet
	// Trimmed is true when the expunge log no longer reaches back to since:
	// Vanished then holds only what the log still has, and the caller must
	// compare UID lists (ListEntries) to find the rest.
	Trimmed bool
}

// Changes serves catch-up for CONDSTORE/QRESYNC and for sessions that lost
// their event stream.
type Changes interface {
	ChangesSince(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, since mail.ModSeq) (ChangeSet, error)
}

// ---- Feed ----

// EventKind is what an event reports.
type EventKind uint8

const (
	EventAppend  EventKind = iota + 1 // UIDs appended (or copied/moved in)
	EventFlags                        // flags of UIDs changed
	EventExpunge                      // UIDs expunged (or moved out)
	EventMailbox                      // the mailbox was created, deleted or renamed
)

func (k EventKind) String() string {
	switch k {
	case EventAppend:
		return "append"
	case EventFlags:
		return "flags"
	case EventExpunge:
		return "expunge"
	case EventMailbox:
		return "mailbox"
	}
	return "unknown"
}

// Event is a change notification. Events are hints: a receiver that needs
// the details (new flags, exact UIDs) reads ChangesSince from the MODSEQ it
// last applied. Events of one mailbox arrive in MODSEQ order on one
// subscription, but may be lost if the subscription breaks.
type Event struct {
	Account mail.AccountID
	Mailbox mail.MailboxID
	Kind    EventKind
	ModSeq  mail.ModSeq
	UIDs    mail.UIDSet
	// Time is when the change was committed, by the clock of the backend
	// that committed it (Redis: the server's TIME, read by the script
	// that commits and publishes, in milliseconds; localmeta: its clock
	// at publish). It lets a receiver measure how late events arrive; it
	// is non-decreasing along one mailbox's events unless that clock
	// steps back. Zero means unknown (a publisher from before the field):
	// a receiver then measures nothing.
	Time time.Time
}

// Subscription delivers events until closed or broken.
type Subscription interface {
	// C delivers events. It is closed when the subscription ends; then Err
	// says why (nil after Close).
	C() <-chan Event
	Err() error
	Close() error
}

// Feed publishes change events. Every mutation publishes after commit;
// Watch subscribes to one account.
type Feed interface {
	// Watch subscribes to the account's events. Events committed after
	// Watch returns are delivered; earlier ones are not.
	Watch(ctx context.Context, acct mail.AccountID) (Subscription, error)
}

// ---- Leases ----

// Lease is a held lease. Token is a fencing token: strictly greater than
// every token issued before for the same account and name.
type Lease struct {
	Token   uint64
	Expires time.Time
}

// Leases are named exclusive leases per account (e.g. the POP3 maildrop
// lock), expiring unless renewed.
type Leases interface {
	// AcquireLease takes the lease for holder (a free-form description) for
	// ttl, or ErrLeaseHeld if it is held and not expired.
	AcquireLease(ctx context.Context, acct mail.AccountID, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends a lease still held under token, or ErrLeaseLost.
	RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (Lease, error)
	// ReleaseLease releases the lease if still held under token; releasing
	// a lost lease is not an error.
	ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error
}

// ---- Counters ----

// Counters are shared counters for rate limits, by free-form key (e.g.
// "authfail/ip/192.0.2.1"). A counter lives for the window that starts at
// its first increment, then resets.
type Counters interface {
	// IncrCounter adds delta (which may be negative) and returns the new
	// value.
	IncrCounter(ctx context.Context, key string, delta int64, window time.Duration) (int64, error)
	// Counter returns the current value, 0 if unset or expired.
	Counter(ctx context.Context, key string) (int64, error)
}

// ---- Slots ----

// Slots are counting semaphores shared by every pod, for limits such as
// connections per client IP or per account. A holder (one pod) keeps a
// count per key; its count lapses ttl after its last acquire or refresh,
// so a dead pod's slots free themselves.
//
// Keys are free-form strings (e.g. "conn/imap/ip/203.0.113.7",
// "conn/imap/acct/42"), not tied to an account. An empty key or holder, a
// limit below 1 or a ttl not above 0 is ErrInvalidArgument. Expiry goes by
// the backend's clock (Redis server time for redismeta), never the
// caller's, so pods whose clocks differ agree on what is live.
//
// An acquire that succeeds and a refresh both set the holder's count of
// the key to lapse ttl from now (a refresh may so shorten it); a refused
// acquire and a release leave the expiry alone. A lapsed count is gone
// as a whole: the holder's next acquire starts again from one. The
// caller, not the store, keeps its own count per key in step (the
// gateway's keeper refreshes every key it holds well within ttl).
type Slots interface {
	// AcquireSlot adds one to holder's count of key if the total of live
	// counts of every holder is below limit, and returns the new total;
	// ErrLimit (new sentinel, "limit reached") when it is not, with the total.
	AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error)
	// ReleaseSlot takes one from holder's count of key (never below 0;
	// releasing an unknown or lapsed slot is not an error).
	ReleaseSlot(ctx context.Context, key, holder string) error
	// RefreshSlots extends to ttl the life of holder's counts under keys
	// (keys holder has no count under are ignored).
	RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error
	// SlotTotal returns the total of live counts of key.
	SlotTotal(ctx context.Context, key string) (int64, error)
}

// ---- Blobs ----

// Blobs tracks blobs whose last entry is gone, so a sweeper can delete
// them after a grace period, and answers whether a blob is referenced (for
// the sweep of blobs left by a crash between upload and commit).
type Blobs interface {
	// PendingBlobs returns up to limit blobs of the account that lost their
	// last reference before olderThan.
	PendingBlobs(ctx context.Context, acct mail.AccountID, olderThan time.Time, limit int) ([]mail.BlobID, error)
	// ForgetBlobs drops blobs from the pending list once deleted.
	ForgetBlobs(ctx context.Context, acct mail.AccountID, ids []mail.BlobID) error
	// BlobReferenced reports whether any entry refers to the blob.
	BlobReferenced(ctx context.Context, acct mail.AccountID, id mail.BlobID) (bool, error)
}
