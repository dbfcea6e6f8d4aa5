package grpcmeta

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	pb "github.com/mailstore/mailstore/proto/mailstore/metadata/v1"
)

// Conversions between the contract's types and the wire's. Both sides use
// them, so a field added to one side of a pair is added to the other.

// ---- times ----

// timeToProto sends the zero time as an absent timestamp.
func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func durationToProto(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func durationFromProto(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// ---- accounts ----

// accountToProto converts an account. The password hash has no field on
// the wire and is dropped.
func accountToProto(a meta.Account) *pb.Account {
	return &pb.Account{
		Id:          string(a.ID),
		Login:       a.Login,
		Quota:       quotaToProto(a.Quota),
		Pop3:        pop3ToProto(a.POP3),
		Disabled:    a.Disabled,
		Created:     timeToProto(a.Created),
		SieveScript: a.SieveScript,
		Aliases:     a.Aliases,
	}
}

func accountFromProto(a *pb.Account) meta.Account {
	return meta.Account{
		ID:          mail.AccountID(a.GetId()),
		Login:       a.GetLogin(),
		Quota:       quotaFromProto(a.GetQuota()),
		POP3:        pop3FromProto(a.GetPop3()),
		Disabled:    a.GetDisabled(),
		Created:     timeFromProto(a.GetCreated()),
		SieveScript: a.GetSieveScript(),
		Aliases:     a.GetAliases(),
	}
}

func accountsFromProto(as []*pb.Account) []meta.Account {
	if len(as) == 0 {
		return nil
	}
	out := make([]meta.Account, len(as))
	for i, a := range as {
		out[i] = accountFromProto(a)
	}
	return out
}

func quotaToProto(q meta.Quota) *pb.Quota {
	return &pb.Quota{
		LimitBytes:    q.LimitBytes,
		LimitMessages: q.LimitMessages,
		UsedBytes:     q.UsedBytes,
		UsedMessages:  q.UsedMessages,
	}
}

func quotaFromProto(q *pb.Quota) meta.Quota {
	return meta.Quota{
		LimitBytes:    q.GetLimitBytes(),
		LimitMessages: q.GetLimitMessages(),
		UsedBytes:     q.GetUsedBytes(),
		UsedMessages:  q.GetUsedMessages(),
	}
}

func pop3ToProto(p meta.POP3Policy) *pb.POP3Policy {
	return &pb.POP3Policy{Mode: p.Mode, KeepDays: int32(p.KeepDays), LoginDelaySeconds: int32(p.LoginDelay)}
}

func pop3FromProto(p *pb.POP3Policy) meta.POP3Policy {
	return meta.POP3Policy{Mode: p.GetMode(), KeepDays: int(p.GetKeepDays()), LoginDelay: int(p.GetLoginDelaySeconds())}
}

// ---- mailboxes ----

func mailboxToProto(m meta.Mailbox) *pb.Mailbox {
	return &pb.Mailbox{
		Id:            uint64(m.ID),
		Name:          m.Name,
		UidValidity:   m.UIDValidity,
		UidNext:       uint32(m.UIDNext),
		HighestModSeq: uint64(m.HighestModSeq),
		Messages:      m.Messages,
		Unseen:        m.Unseen,
		Size:          m.Size,
		SpecialUse:    m.SpecialUse,
		Subscribed:    m.Subscribed,
	}
}

func mailboxFromProto(m *pb.Mailbox) meta.Mailbox {
	return meta.Mailbox{
		ID:            mail.MailboxID(m.GetId()),
		Name:          m.GetName(),
		UIDValidity:   m.GetUidValidity(),
		UIDNext:       mail.UID(m.GetUidNext()),
		HighestModSeq: mail.ModSeq(m.GetHighestModSeq()),
		Messages:      m.GetMessages(),
		Unseen:        m.GetUnseen(),
		Size:          m.GetSize(),
		SpecialUse:    m.GetSpecialUse(),
		Subscribed:    m.GetSubscribed(),
	}
}

// ---- UIDs ----

func uidSetToProto(s mail.UIDSet) *pb.UidSet {
	if s == nil {
		return nil
	}
	out := &pb.UidSet{Ranges: make([]*pb.UidRange, len(s))}
	for i, r := range s {
		out.Ranges[i] = &pb.UidRange{Start: uint32(r.Start), Stop: uint32(r.Stop)}
	}
	return out
}

// uidSetFromProto rebuilds the set through AddRange, so that whatever the
// peer sent, the result keeps UIDSet's invariants (sorted, disjoint).
func uidSetFromProto(s *pb.UidSet) mail.UIDSet {
	var out mail.UIDSet
	for _, r := range s.GetRanges() {
		out = out.AddRange(mail.UID(r.GetStart()), mail.UID(r.GetStop()))
	}
	return out
}

func uidsToProto(uids []mail.UID) []uint32 {
	if len(uids) == 0 {
		return nil
	}
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out
}

func uidsFromProto(uids []uint32) []mail.UID {
	if len(uids) == 0 {
		return nil
	}
	out := make([]mail.UID, len(uids))
	for i, u := range uids {
		out[i] = mail.UID(u)
	}
	return out
}

// ---- entries ----

func flagsToProto(fs []mail.Flag) []string {
	if len(fs) == 0 {
		return nil
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func flagsFromProto(fs []string) []mail.Flag {
	if len(fs) == 0 {
		return nil
	}
	out := make([]mail.Flag, len(fs))
	for i, f := range fs {
		out[i] = mail.Flag(f)
	}
	return out
}

func entryToProto(e meta.Entry) *pb.Entry {
	return &pb.Entry{
		Uid:          uint32(e.UID),
		ModSeq:       uint64(e.ModSeq),
		Flags:        flagsToProto(e.Flags),
		InternalDate: timeToProto(e.InternalDate),
		Size:         e.Size,
		BlobId:       string(e.Blob),
		Structure:    e.Structure,
		Retrieved:    timeToProto(e.Retrieved),
	}
}

func entryFromProto(e *pb.Entry) meta.Entry {
	return meta.Entry{
		UID:          mail.UID(e.GetUid()),
		ModSeq:       mail.ModSeq(e.GetModSeq()),
		Flags:        flagsFromProto(e.GetFlags()),
		InternalDate: timeFromProto(e.GetInternalDate()),
		Size:         e.GetSize(),
		Blob:         mail.BlobID(e.GetBlobId()),
		Structure:    e.GetStructure(),
		Retrieved:    timeFromProto(e.GetRetrieved()),
	}
}

func entriesToProto(es []meta.Entry) []*pb.Entry {
	if len(es) == 0 {
		return nil
	}
	out := make([]*pb.Entry, len(es))
	for i, e := range es {
		out[i] = entryToProto(e)
	}
	return out
}

func appendEntriesFromProto(dst []meta.Entry, es []*pb.Entry) []meta.Entry {
	for _, e := range es {
		dst = append(dst, entryFromProto(e))
	}
	return dst
}

var fieldTable = []struct {
	f  meta.Fields
	pb pb.EntryField
}{
	{meta.FieldFlags, pb.EntryField_ENTRY_FIELD_FLAGS},
	{meta.FieldInfo, pb.EntryField_ENTRY_FIELD_INFO},
	{meta.FieldStructure, pb.EntryField_ENTRY_FIELD_STRUCTURE},
}

func fieldsToProto(f meta.Fields) []pb.EntryField {
	var out []pb.EntryField
	for _, ft := range fieldTable {
		if f&ft.f != 0 {
			out = append(out, ft.pb)
		}
	}
	return out
}

// fieldsFromProto ignores values it does not know: a newer client asking
// for more gets what this server has.
func fieldsFromProto(fs []pb.EntryField) meta.Fields {
	var f meta.Fields
	for _, x := range fs {
		for _, ft := range fieldTable {
			if x == ft.pb {
				f |= ft.f
			}
		}
	}
	return f
}

func flagOpToProto(op meta.FlagOp) (pb.FlagOp, error) {
	switch op {
	case meta.FlagsReplace:
		return pb.FlagOp_FLAG_OP_REPLACE, nil
	case meta.FlagsAdd:
		return pb.FlagOp_FLAG_OP_ADD, nil
	case meta.FlagsRemove:
		return pb.FlagOp_FLAG_OP_REMOVE, nil
	}
	return 0, fmt.Errorf("flag operation %d: %w", op, meta.ErrInvalidArgument)
}

func flagOpFromProto(op pb.FlagOp) (meta.FlagOp, error) {
	switch op {
	case pb.FlagOp_FLAG_OP_REPLACE:
		return meta.FlagsReplace, nil
	case pb.FlagOp_FLAG_OP_ADD:
		return meta.FlagsAdd, nil
	case pb.FlagOp_FLAG_OP_REMOVE:
		return meta.FlagsRemove, nil
	}
	return 0, fmt.Errorf("flag operation %v: %w", op, meta.ErrInvalidArgument)
}

func copiedToProto(c meta.Copied) *pb.Copied {
	return &pb.Copied{
		UidValidity:     c.UIDValidity,
		SourceUids:      uidsToProto(c.Source),
		DestinationUids: uidsToProto(c.Dest),
		ModSeq:          uint64(c.ModSeq),
	}
}

func copiedFromProto(c *pb.Copied) meta.Copied {
	return meta.Copied{
		UIDValidity: c.GetUidValidity(),
		Source:      uidsFromProto(c.GetSourceUids()),
		Dest:        uidsFromProto(c.GetDestinationUids()),
		ModSeq:      mail.ModSeq(c.GetModSeq()),
	}
}

// ---- events and leases ----

var eventKindTable = []struct {
	k  meta.EventKind
	pb pb.EventKind
}{
	{meta.EventAppend, pb.EventKind_EVENT_KIND_APPEND},
	{meta.EventFlags, pb.EventKind_EVENT_KIND_FLAGS},
	{meta.EventExpunge, pb.EventKind_EVENT_KIND_EXPUNGE},
	{meta.EventMailbox, pb.EventKind_EVENT_KIND_MAILBOX},
}

func eventToProto(ev meta.Event) *pb.Event {
	out := &pb.Event{
		AccountId: string(ev.Account),
		MailboxId: uint64(ev.Mailbox),
		ModSeq:    uint64(ev.ModSeq),
		Uids:      uidSetToProto(ev.UIDs),
		Time:      timeToProto(ev.Time),
	}
	for _, k := range eventKindTable {
		if k.k == ev.Kind {
			out.Kind = k.pb
		}
	}
	return out
}

// eventFromProto turns an unknown kind into the zero EventKind, which a
// receiver treats like any event: a hint to catch up with ChangesSince.
func eventFromProto(ev *pb.Event) meta.Event {
	out := meta.Event{
		Account: mail.AccountID(ev.GetAccountId()),
		Mailbox: mail.MailboxID(ev.GetMailboxId()),
		ModSeq:  mail.ModSeq(ev.GetModSeq()),
		UIDs:    uidSetFromProto(ev.GetUids()),
		Time:    timeFromProto(ev.GetTime()),
	}
	for _, k := range eventKindTable {
		if k.pb == ev.GetKind() {
			out.Kind = k.k
		}
	}
	return out
}

func leaseToProto(l meta.Lease) *pb.Lease {
	return &pb.Lease{Token: l.Token, Expires: timeToProto(l.Expires)}
}

func leaseFromProto(l *pb.Lease) meta.Lease {
	return meta.Lease{Token: l.GetToken(), Expires: timeFromProto(l.GetExpires())}
}

func blobIDsToProto(ids []mail.BlobID) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func blobIDsFromProto(ids []string) []mail.BlobID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]mail.BlobID, len(ids))
	for i, id := range ids {
		out[i] = mail.BlobID(id)
	}
	return out
}
