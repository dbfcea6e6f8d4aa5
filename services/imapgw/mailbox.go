package imapgw

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("CREATE", handler{fn: cmdCreate, states: authed, updates: true})
	register("DELETE", handler{fn: cmdDelete, states: authed, updates: true})
	register("RENAME", handler{fn: cmdRename, states: authed, updates: true})
	register("SUBSCRIBE", handler{fn: cmdSubscribe, states: authed, updates: true})
	register("UNSUBSCRIBE", handler{fn: cmdSubscribe, states: authed, updates: true})
	register("LIST", handler{fn: cmdList, states: authed, updates: true})
	register("LSUB", handler{fn: cmdLsub, states: authed, updates: true})
	register("STATUS", handler{fn: cmdStatus, states: authed, updates: true})
	registerCap("CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "STATUS=SIZE")
}

var specialUses = []string{mail.SpecialAll, mail.SpecialArchive, mail.SpecialDrafts, mail.SpecialFlagged, mail.SpecialJunk, mail.SpecialSent, mail.SpecialTrash}

// readName reads a mailbox argument and decodes it.
func (s *session) readName() (string, error) {
	raw, err := s.dec.AString()
	if err != nil {
		return "", err
	}
	return s.decodeName(raw)
}

// cmdCreate: RFC 9051 6.3.4 with CREATE-SPECIAL-USE (RFC 6154). Missing
// superiors are created too, as the RFC recommends.
func cmdCreate(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	use := ""
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		err := s.dec.List(func() error {
			p, err := s.dec.Atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(p, "USE") {
				return bad("Unknown CREATE parameter")
			}
			if err := s.dec.SP(); err != nil {
				return err
			}
			return s.dec.List(func() error {
				f, err := s.dec.Flag()
				if err != nil {
					return err
				}
				i := slices.IndexFunc(specialUses, func(u string) bool { return strings.EqualFold(u, f) })
				if i < 0 || use != "" {
					return no("USEATTR", "Unsupported special use")
				}
				use = specialUses[i]
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if name == mail.Inbox {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	if err := s.createParents(ctx, name); err != nil {
		return err
	}
	if _, err := s.gw.deps.Meta.CreateMailbox(ctx, s.acct.ID, name, use); err != nil {
		return err
	}
	return nil
}

// createParents creates the missing superiors of name, as RFC 9051
// recommends for CREATE (and RENAME).
func (s *session) createParents(ctx context.Context, name string) error {
	levels := strings.Split(name, string(mail.Delimiter))
	for i := 1; i < len(levels); i++ {
		parent := strings.Join(levels[:i], string(mail.Delimiter))
		if _, err := s.gw.deps.Meta.CreateMailbox(ctx, s.acct.ID, parent, ""); err != nil && !errors.Is(err, meta.ErrExists) {
			return err
		}
	}
	return nil
}

func cmdDelete(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if name == mail.Inbox {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	// A mailbox with inferiors is deleted all the same: its name stays
	// visible as a \Noselect (\NonExistent) level above its children, the
	// RFC 3501 behaviour.
	if err := s.gw.deps.Meta.DeleteMailbox(ctx, s.acct.ID, name); err != nil {
		return err
	}
	if s.sel != nil && s.sel.mbox.Name == name {
		s.unselect()
	}
	return nil
}

func cmdRename(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	from, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	to, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if to == mail.Inbox {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	if to == from || strings.HasPrefix(to, from+string(mail.Delimiter)) {
		return no("CANNOT", "Cannot rename a mailbox below itself")
	}
	if err := s.createParents(ctx, to); err != nil {
		return err
	}
	return s.gw.deps.Meta.RenameMailbox(ctx, s.acct.ID, from, to)
}

func cmdSubscribe(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	return s.gw.deps.Meta.SetSubscribed(ctx, s.acct.ID, name, cmd.name == "SUBSCRIBE")
}

// listOptions are LIST-EXTENDED selection and return options.
type listOptions struct {
	subscribedOnly, recursive, specialOnly bool
	retSubscribed, retChildren, retSpecial bool
	status                                 []string
}

// cmdList: RFC 9051 6.3.9 with LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819) and SPECIAL-USE (RFC 6154).
func cmdList(s *session, ctx context.Context, _ *command) error {
	var opt listOptions
	if err := s.dec.SP(); err != nil {
		return err
	}
	if s.dec.PeekIs('(') {
		err := s.dec.List(func() error {
			o, err := s.dec.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				opt.subscribedOnly, opt.retSubscribed = true, true
			case "RECURSIVEMATCH":
				opt.recursive = true
			case "SPECIAL-USE":
				opt.specialOnly, opt.retSpecial = true, true
			case "REMOTE":
			default:
				return bad("Unknown LIST selection option")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if opt.recursive && !opt.subscribedOnly {
			return bad("RECURSIVEMATCH needs another selection option")
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
	}
	ref, err := s.dec.AString()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	var patterns []string
	if s.dec.PeekIs('(') {
		err = s.dec.List(func() error {
			p, err := s.dec.ListMailbox()
			patterns = append(patterns, p)
			return err
		})
	} else {
		var p string
		p, err = s.dec.ListMailbox()
		patterns = append(patterns, p)
	}
	if err != nil {
		return err
	}
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		kw, err := s.dec.Atom()
		if err != nil || !strings.EqualFold(kw, "RETURN") {
			return bad("Expected RETURN")
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
		err = s.dec.List(func() error {
			o, err := s.dec.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				opt.retSubscribed = true
			case "CHILDREN":
				opt.retChildren = true
			case "SPECIAL-USE":
				opt.retSpecial = true
			case "STATUS":
				if err := s.dec.SP(); err != nil {
					return err
				}
				return s.dec.List(func() error {
					a, err := s.dec.Atom()
					opt.status = append(opt.status, strings.ToUpper(a))
					return err
				})
			default:
				return bad("Unknown LIST return option")
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter and root (RFC 9051 6.3.9).
		s.enc.Raw(`* LIST (\Noselect) "/" ""`).CRLF()
		return nil
	}
	if !s.utf8 {
		ref, _ = s.decodeRaw(ref)
	}
	for i, p := range patterns {
		if !s.utf8 {
			p, _ = s.decodeRaw(p)
		}
		patterns[i] = ref + p
	}
	return s.list(ctx, patterns, opt)
}

// decodeRaw decodes modified UTF-7 without the name checks (patterns and
// references are not names).
func (s *session) decodeRaw(v string) (string, error) {
	n, err := s.decodeName(v)
	if err != nil {
		return v, err
	}
	return n, nil
}

// listItem is one LIST answer.
type listItem struct {
	name  string
	attrs []string
	mbox  *meta.Mailbox
	// childSubscribed: CHILDINFO ("SUBSCRIBED") of RECURSIVEMATCH.
	childSubscribed bool
}

func (s *session) list(ctx context.Context, patterns []string, opt listOptions) error {
	mboxes, err := s.gw.deps.Meta.ListMailboxes(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	subs, err := s.gw.deps.Meta.Subscriptions(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	subscribed := map[string]bool{}
	for _, n := range subs {
		subscribed[n] = true
	}
	exists := map[string]*meta.Mailbox{}
	hasChild := map[string]bool{}
	all := map[string]bool{} // every name, existing or an implied parent
	for i := range mboxes {
		m := &mboxes[i]
		exists[m.Name] = m
		all[m.Name] = true
		for p := parentOf(m.Name); p != ""; p = parentOf(p) {
			hasChild[p] = true
			all[p] = true
		}
	}
	if opt.subscribedOnly {
		for _, n := range subs {
			all[n] = true
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	var items []listItem
	for _, n := range names {
		matched := false
		for _, p := range patterns {
			if meta.MatchPattern(p, n) {
				matched = true
				break
			}
		}
		m := exists[n]
		it := listItem{name: n, mbox: m}
		if opt.subscribedOnly && !subscribed[n] {
			if !(opt.recursive && matched && anyChildSubscribed(n, subs)) {
				continue
			}
			it.childSubscribed = true
		}
		if !matched {
			continue
		}
		if opt.specialOnly && (m == nil || m.SpecialUse == "") {
			continue
		}
		if m == nil {
			if opt.subscribedOnly && subscribed[n] {
				it.attrs = append(it.attrs, `\NonExistent`)
			} else {
				it.attrs = append(it.attrs, `\Noselect`)
			}
		}
		if hasChild[n] {
			it.attrs = append(it.attrs, `\HasChildren`)
		} else {
			it.attrs = append(it.attrs, `\HasNoChildren`)
		}
		if (opt.retSubscribed || opt.subscribedOnly) && subscribed[n] {
			it.attrs = append(it.attrs, `\Subscribed`)
		}
		if m != nil && m.SpecialUse != "" {
			it.attrs = append(it.attrs, m.SpecialUse)
		}
		items = append(items, it)
	}
	for _, it := range items {
		s.enc.Raw("* LIST (").Raw(strings.Join(it.attrs, " ")).Raw(`) "/" `)
		s.writeName(it.name)
		if it.childSubscribed {
			s.enc.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		s.enc.CRLF()
		if len(opt.status) > 0 && it.mbox != nil {
			if err := s.writeStatus(ctx, *it.mbox, opt.status); err != nil {
				return err
			}
		}
	}
	return nil
}

func anyChildSubscribed(n string, subs []string) bool {
	for _, sub := range subs {
		if strings.HasPrefix(sub, n+string(mail.Delimiter)) {
			return true
		}
	}
	return false
}

func parentOf(name string) string {
	i := strings.LastIndexByte(name, mail.Delimiter)
	if i < 0 {
		return ""
	}
	return name[:i]
}

// cmdLsub: RFC 3501 LSUB (deprecated in IMAP4rev2, kept for rev1 clients).
func cmdLsub(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	ref, err := s.dec.AString()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	pat, err := s.dec.ListMailbox()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if !s.utf8 {
		ref, _ = s.decodeRaw(ref)
		pat, _ = s.decodeRaw(pat)
	}
	subs, err := s.gw.deps.Meta.Subscriptions(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	mboxes, err := s.gw.deps.Meta.ListMailboxes(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, m := range mboxes {
		exists[m.Name] = true
	}
	for _, n := range subs {
		if !meta.MatchPattern(ref+pat, n) {
			continue
		}
		attrs := ""
		if !exists[n] {
			attrs = `\Noselect`
		}
		s.enc.Raw("* LSUB (").Raw(attrs).Raw(`) "/" `)
		s.writeName(n)
		s.enc.CRLF()
	}
	return nil
}

func cmdStatus(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	var items []string
	err = s.dec.List(func() error {
		a, err := s.dec.Atom()
		items = append(items, strings.ToUpper(a))
		return err
	})
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	for _, it := range items {
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID":
		default:
			return bad("Unknown STATUS item " + it)
		}
	}
	m, err := s.gw.deps.Meta.Mailbox(ctx, s.acct.ID, name)
	if err != nil {
		return err
	}
	return s.writeStatus(ctx, m, items)
}

// writeStatus writes "* STATUS name (...)". Every item is an O(1) counter
// except DELETED, which counts flags.
func (s *session) writeStatus(ctx context.Context, m meta.Mailbox, items []string) error {
	var parts []string
	for _, it := range items {
		var v string
		switch it {
		case "MESSAGES":
			v = strconv.FormatInt(m.Messages, 10)
		case "UIDNEXT":
			v = strconv.FormatUint(uint64(m.UIDNext), 10)
		case "UIDVALIDITY":
			v = strconv.FormatUint(uint64(m.UIDValidity), 10)
		case "UNSEEN":
			v = strconv.FormatInt(m.Unseen, 10)
		case "SIZE":
			v = strconv.FormatInt(m.Size, 10)
		case "RECENT":
			v = "0"
		case "HIGHESTMODSEQ":
			v = strconv.FormatUint(uint64(m.HighestModSeq), 10)
		case "APPENDLIMIT":
			if s.gw.deps.Ingest == nil {
				v = "NIL"
			} else {
				v = strconv.FormatInt(s.gw.deps.Ingest.MaxMessageSize(), 10)
			}
		case "MAILBOXID":
			v = "(M" + s.mailboxObjectID(m) + ")"
		case "DELETED":
			entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, m.ID, mail.AllUIDs(), meta.FieldFlags, 0)
			if err != nil {
				return err
			}
			n := 0
			for _, e := range entries {
				if slices.Contains(e.Flags, mail.FlagDeleted) {
					n++
				}
			}
			v = strconv.Itoa(n)
		default:
			continue
		}
		parts = append(parts, it+" "+v)
	}
	s.enc.Raw("* STATUS ")
	s.writeName(m.Name)
	s.enc.Raw(" (").Raw(strings.Join(parts, " ")).Raw(")").CRLF()
	return nil
}
