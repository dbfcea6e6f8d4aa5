package imapgw

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// NOTIFY (RFC 5465) tells a client about other mailboxes without a second
// connection: new mail, expunges and flag changes as STATUS responses,
// mailbox creation, deletion and renaming and subscription changes as LIST
// responses. The selected mailbox keeps the update path of view.go (EXISTS,
// EXPUNGE, FETCH FLAGS), which already holds expunges back during commands
// that use sequence numbers, as SELECTED-DELAYED asks; SELECTED is served
// the same way, which the RFC allows.
//
// The hub records which other mailboxes had events (hubSub.watchOthers);
// at the end of a command and during IDLE the session reads their counters
// and compares them with a snapshot taken at NOTIFY SET, so a lost or
// coalesced event costs nothing but a read, as for the selected mailbox. A
// re-established stream or a mailbox event compares the whole mailbox list.
// Subscriptions have no feed event: changes made on this pod are signalled
// through the hub, others are found when NOOP (or any other notification)
// makes the session compare the subscription list.

func init() {
	register("NOTIFY", handler{fn: cmdNotify, states: authed, updates: true})
	registerCap("NOTIFY")
}

const (
	// maxNotifyNames bounds the mailbox names of one NOTIFY command and
	// maxNotifyMailboxes the mailboxes a session tracks; beyond them the
	// answer is NOTIFICATIONOVERFLOW.
	maxNotifyNames     = 1000
	maxNotifyMailboxes = 10000
)

// notifyFilter is a filter-mailboxes of RFC 5465 section 6.
type notifyFilter uint8

const (
	filterSelected notifyFilter = iota
	filterSelectedDelayed
	filterInboxes
	filterPersonal
	filterSubscribed
	filterSubtree
	filterMailboxes
)

var notifyFilters = map[string]notifyFilter{
	"SELECTED": filterSelected, "SELECTED-DELAYED": filterSelectedDelayed, "INBOXES": filterInboxes,
	"PERSONAL": filterPersonal, "SUBSCRIBED": filterSubscribed, "SUBTREE": filterSubtree, "MAILBOXES": filterMailboxes,
}

// notifyEvents is a set of RFC 5465 section 5 events.
type notifyEvents uint16

const (
	evMessageNew notifyEvents = 1 << iota
	evMessageExpunge
	evFlagChange
	evAnnotationChange
	evMailboxName
	evSubscriptionChange
	evMailboxMetadataChange
	evServerMetadataChange
	evUnknown // an event-ext this server does not know

	evMessage   = evMessageNew | evMessageExpunge
	evSupported = evMessageNew | evMessageExpunge | evFlagChange | evMailboxName | evSubscriptionChange
)

var notifyEventNames = []struct {
	name string
	ev   notifyEvents
}{
	{"MessageNew", evMessageNew}, {"MessageExpunge", evMessageExpunge}, {"FlagChange", evFlagChange},
	{"AnnotationChange", evAnnotationChange}, {"MailboxName", evMailboxName}, {"SubscriptionChange", evSubscriptionChange},
	{"MailboxMetadataChange", evMailboxMetadataChange}, {"ServerMetadataChange", evServerMetadataChange},
}

// badEventCode is the BADEVENT response code, listing the events this
// server supports (RFC 5465 section 5).
var badEventCode = func() string {
	var names []string
	for _, e := range notifyEventNames {
		if e.ev&evSupported != 0 {
			names = append(names, e.name)
		}
	}
	return "BADEVENT (" + strings.Join(names, " ") + ")"
}()

// notifyGroup is one event-group.
type notifyGroup struct {
	filter notifyFilter
	raw    []string // SUBTREE and MAILBOXES names as sent
	names  []string // decoded
	events notifyEvents
	// fetch: the fetch-att list of MessageNew, for the selected mailbox.
	fetch *fetchItems
}

// notifier is a session's NOTIFY state.
type notifier struct {
	groups   []notifyGroup // for mailboxes other than the selected one
	selected *notifyGroup  // SELECTED or SELECTED-DELAYED, if given
	// wantSubs: subscriptions are tracked (SUBSCRIBED filter or
	// SubscriptionChange).
	wantSubs bool
	// others: some group asks for events of other mailboxes.
	others bool

	// mboxes is the snapshot compared with the store; subs the
	// subscriptions when wantSubs.
	mboxes map[mail.MailboxID]meta.Mailbox
	subs   map[string]bool
	// retry: the last delivery failed; the next compares everything.
	retry bool

	// selView and selMax: the selected view and the highest UID announced
	// in it, for the fetch-att of MessageNew.
	selView *view
	selMax  mail.UID
}

// cmdNotify: NOTIFY NONE | NOTIFY SET [STATUS] event-group... (RFC 5465
// section 3). A failed NOTIFY leaves the previous settings in force.
func cmdNotify(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	verb, err := s.dec.Atom()
	if err != nil {
		return err
	}
	switch strings.ToUpper(verb) {
	case "NONE":
		if err := s.endCommand(); err != nil {
			return err
		}
		s.notify = nil
		s.watch.watchOthers(false)
		return nil
	case "SET":
	default:
		return bad("Expected NOTIFY SET or NOTIFY NONE")
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	status := false
	if !s.dec.PeekIs('(') {
		a, err := s.dec.Atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(a, "STATUS") {
			return bad("Expected STATUS or an event group")
		}
		status = true
		if err := s.dec.SP(); err != nil {
			return err
		}
	}
	var groups []notifyGroup
	for {
		g, err := s.readEventGroup()
		if err != nil {
			return err
		}
		groups = append(groups, g)
		if !s.dec.PeekIs(' ') {
			break
		}
		_ = s.dec.SP()
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	// The line is read: answers from here on must not skip another.
	n, err := s.newNotifier(groups)
	if err != nil {
		return err
	}
	return s.startNotify(ctx, n, status)
}

// readEventGroup reads "(" filter-mailboxes SP events ")".
func (s *session) readEventGroup() (notifyGroup, error) {
	var g notifyGroup
	if err := s.dec.Expect('('); err != nil {
		return g, err
	}
	f, err := s.dec.Atom()
	if err != nil {
		return g, err
	}
	filter, ok := notifyFilters[strings.ToUpper(f)]
	if !ok {
		return g, bad("Unknown NOTIFY mailbox filter " + f)
	}
	g.filter = filter
	if err := s.dec.SP(); err != nil {
		return g, err
	}
	if filter == filterSubtree || filter == filterMailboxes {
		err := s.dec.ListOrOne(func() error {
			raw, err := s.dec.AString()
			g.raw = append(g.raw, raw)
			return err
		})
		if err != nil {
			return g, err
		}
		if err := s.dec.SP(); err != nil {
			return g, err
		}
	}
	if !s.dec.PeekIs('(') {
		a, err := s.dec.Atom()
		if err != nil {
			return g, err
		}
		if !strings.EqualFold(a, "NONE") {
			return g, bad("Expected NONE or a list of events")
		}
	} else if err := s.readEvents(&g); err != nil {
		return g, err
	}
	return g, s.dec.Expect(')')
}

// readEvents reads "(" event *(SP event) ")", where MessageNew may carry
// a fetch-att list.
func (s *session) readEvents(g *notifyGroup) error {
	if err := s.dec.Expect('('); err != nil {
		return err
	}
	for {
		a, err := s.dec.Atom()
		if err != nil {
			return err
		}
		ev := evUnknown
		for _, e := range notifyEventNames {
			if strings.EqualFold(a, e.name) {
				ev = e.ev
			}
		}
		g.events |= ev
		if ev == evMessageNew && s.dec.PeekIs(' ') {
			_ = s.dec.SP()
			if !s.dec.PeekIs('(') {
				continue // the space separated the next event
			}
			g.fetch = &fetchItems{}
			err := s.dec.List(func() error {
				w, err := s.dec.Word()
				if err != nil {
					return err
				}
				return g.fetch.add(w)
			})
			if err != nil {
				return err
			}
		}
		if s.dec.PeekIs(')') {
			return s.dec.Expect(')')
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
	}
}

// clientError is a BAD for a command whose line was read to the end.
func clientError(text string) error { return &statusError{status: "BAD", text: text} }

// newNotifier checks the event groups as RFC 5465 sections 3.1 and 5 ask
// and decodes their mailbox names.
func (s *session) newNotifier(groups []notifyGroup) (*notifier, error) {
	n := &notifier{}
	var all notifyEvents
	names := 0
	for i := range groups {
		g := &groups[i]
		ev := g.events
		all |= ev
		if ev&evMessage != 0 && ev&evMessage != evMessage {
			return nil, clientError("MessageNew and MessageExpunge must be requested together")
		}
		if ev&(evFlagChange|evAnnotationChange) != 0 && ev&evMessage != evMessage {
			return nil, clientError("FlagChange and AnnotationChange require MessageNew and MessageExpunge")
		}
		if ev&evSubscriptionChange != 0 || g.filter == filterSubscribed {
			n.wantSubs = true
		}
		switch g.filter {
		case filterSelected, filterSelectedDelayed:
			if n.selected != nil {
				return nil, clientError("Only one SELECTED or SELECTED-DELAYED filter is allowed")
			}
			n.selected = g
			continue
		}
		if g.fetch != nil {
			return nil, clientError("MessageNew fetch attributes apply to the selected mailbox only")
		}
		if ev != 0 {
			n.others = true
		}
		names += len(g.raw)
		for _, raw := range g.raw {
			name, err := s.decodeName(raw)
			if err != nil {
				return nil, clientError("Invalid mailbox name")
			}
			g.names = append(g.names, name)
		}
		n.groups = append(n.groups, *g)
	}
	if all&^evSupported != 0 {
		return nil, no(badEventCode, "Unsupported NOTIFY event")
	}
	if names > maxNotifyNames {
		return nil, no("NOTIFICATIONOVERFLOW", "Too many mailboxes")
	}
	n.others = n.others || n.wantSubs
	return n, nil
}

// startNotify replaces the session's NOTIFY state by n, after reading the
// snapshot it compares with, and sends the initial STATUS responses the
// STATUS indicator asks for.
func (s *session) startNotify(ctx context.Context, n *notifier, status bool) error {
	old := s.notify
	if n.others {
		// Before the snapshot, so that no change falls in between.
		s.watch.watchOthers(true)
		if err := n.load(ctx, s); err != nil {
			s.watch.watchOthers(old != nil && old.others)
			return err
		}
		if len(n.mboxes) > maxNotifyMailboxes {
			s.watch.watchOthers(old != nil && old.others)
			return no("NOTIFICATIONOVERFLOW", "Too many mailboxes")
		}
	} else {
		s.watch.watchOthers(false)
	}
	s.notify = n
	if !status {
		return nil
	}
	for _, m := range n.sorted() {
		if s.sel != nil && s.sel.mbox.ID == m.ID {
			continue
		}
		ev := n.eventsFor(m.Name, n.subs[m.Name])
		if ev&(evMessage|evFlagChange) == 0 {
			continue
		}
		// RFC 5465 3.1: MESSAGES, UIDNEXT and UIDVALIDITY for
		// MessageNew; HIGHESTMODSEQ too for FlagChange with CONDSTORE.
		items := []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
		if ev&evFlagChange != 0 && hasCap("CONDSTORE") {
			items = append(items, "HIGHESTMODSEQ")
		}
		if err := s.writeStatus(ctx, m, items); err != nil {
			return err
		}
	}
	return nil
}

// load reads the snapshot.
func (n *notifier) load(ctx context.Context, s *session) error {
	mboxes, err := s.gw.deps.Meta.ListMailboxes(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	n.mboxes = make(map[mail.MailboxID]meta.Mailbox, len(mboxes))
	for _, m := range mboxes {
		n.mboxes[m.ID] = m
	}
	if n.wantSubs {
		subs, err := s.gw.deps.Meta.Subscriptions(ctx, s.acct.ID)
		if err != nil {
			return err
		}
		n.subs = make(map[string]bool, len(subs))
		for _, name := range subs {
			n.subs[name] = true
		}
	}
	return nil
}

// sorted returns the snapshot ordered by name.
func (n *notifier) sorted() []meta.Mailbox {
	out := slices.Collect(maps.Values(n.mboxes))
	slices.SortFunc(out, func(a, b meta.Mailbox) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// eventsFor returns the events asked for a mailbox other than the
// selected one. When several groups match, the most specific wins
// (MAILBOXES, then the longest SUBTREE, SUBSCRIBED, INBOXES, PERSONAL), so
// that "(personal (...)) (mailboxes Junk NONE)" means every mailbox but
// Junk; among equals, the first.
func (n *notifier) eventsFor(name string, subscribed bool) notifyEvents {
	var best notifyEvents
	bestRank := -1
	for _, g := range n.groups {
		rank := -1
		switch g.filter {
		case filterPersonal:
			rank = 0
		case filterInboxes:
			// Mail is delivered to INBOX only.
			if name == mail.Inbox {
				rank = 1
			}
		case filterSubscribed:
			if subscribed {
				rank = 2
			}
		case filterSubtree:
			for _, p := range g.names {
				if name == p || strings.HasPrefix(name, p+string(mail.Delimiter)) {
					rank = max(rank, 3+len(p))
				}
			}
		case filterMailboxes:
			if slices.Contains(g.names, name) {
				rank = 1 << 30
			}
		}
		if rank > bestRank {
			best, bestRank = g.events, rank
		}
	}
	return best
}

// listEventsFor returns the events that apply to LIST notifications about
// the mailbox: the selected group's for the selected mailbox, if given.
func (s *session) listEventsFor(id mail.MailboxID, name string) notifyEvents {
	n := s.notify
	if n.selected != nil && s.sel != nil && s.sel.mbox.ID == id {
		return n.selected.events
	}
	return n.eventsFor(name, n.subs[name])
}

// notifyAfter runs at the end of a command that allows unsolicited
// responses.
func (s *session) notifyAfter(ctx context.Context, cmd *command) {
	if s.watch == nil || (s.state != stateAuth && s.state != stateSelected) {
		return
	}
	if cmd.name == "SUBSCRIBE" || cmd.name == "UNSUBSCRIBE" {
		s.gw.hub.subscriptionsChanged(s.acct.ID)
	}
	if s.notify == nil {
		return
	}
	s.notifyFetchNew(ctx)
	s.deliverNotify(ctx, cmd.name == "NOOP" || cmd.name == "CHECK")
}

// idleNotify sends notifications during IDLE.
func (s *session) idleNotify() {
	if s.notify == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.gw.cfg.CommandTimeout)
	defer cancel()
	s.notifyFetchNew(ctx)
	s.deliverNotify(ctx, false)
	_ = s.enc.Flush()
}

// deliverNotify writes what changed in other mailboxes since the last
// delivery; poll also compares subscriptions when no event said they
// changed. A failed read is logged and the next delivery compares
// everything.
func (s *session) deliverNotify(ctx context.Context, poll bool) {
	n := s.notify
	if n == nil || !n.others {
		return
	}
	changed, restarted, subs := s.watch.takeChanges()
	relist := restarted || n.retry
	for id, k := range changed {
		if _, known := n.mboxes[id]; !known || k.has(meta.EventMailbox) {
			relist = true
		}
	}
	var err error
	switch {
	case relist:
		err = s.notifyMailboxList(ctx)
	case len(changed) > 0:
		err = s.notifyChanged(ctx, changed)
	}
	if s.notify == nil { // overflow
		return
	}
	if err == nil && n.wantSubs && (subs || poll || relist) {
		err = s.notifySubscriptions(ctx)
	}
	n.retry = err != nil
	if err != nil {
		s.logger.Warn("deliver notifications", "err", err)
	}
}

// notifyChanged compares the counters of the changed mailboxes.
func (s *session) notifyChanged(ctx context.Context, changed map[mail.MailboxID]eventKinds) error {
	n := s.notify
	var now []meta.Mailbox
	for id := range changed {
		if s.sel != nil && s.sel.mbox.ID == id {
			continue // reported by the selected view
		}
		m, err := s.gw.deps.Meta.MailboxByID(ctx, s.acct.ID, id)
		if errors.Is(err, meta.ErrNoSuchMailbox) {
			return s.notifyMailboxList(ctx)
		}
		if err != nil {
			return err
		}
		now = append(now, m)
	}
	slices.SortFunc(now, func(a, b meta.Mailbox) int { return cmp.Compare(a.Name, b.Name) })
	for _, m := range now {
		if old := n.mboxes[m.ID]; old.Name != m.Name {
			// Renamed, and the event lost or not yet read: compare
			// the whole list.
			return s.notifyMailboxList(ctx)
		}
	}
	for _, m := range now {
		if err := s.notifyStatus(ctx, n.mboxes[m.ID], m); err != nil {
			return err
		}
		n.mboxes[m.ID] = m
	}
	return nil
}

// notifyMailboxList compares the whole mailbox list with the snapshot:
// LIST for created, renamed and deleted mailboxes (MailboxName), STATUS
// for changed counters.
func (s *session) notifyMailboxList(ctx context.Context) error {
	n := s.notify
	mboxes, err := s.gw.deps.Meta.ListMailboxes(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	if len(mboxes) > maxNotifyMailboxes {
		// RFC 5465 section 5.8: say so and behave as after NOTIFY NONE.
		s.enc.Raw("* OK [NOTIFICATIONOVERFLOW] Too many mailboxes; notifications are off").CRLF()
		s.notify = nil
		s.watch.watchOthers(false)
		return nil
	}
	seen := make(map[mail.MailboxID]bool, len(mboxes))
	for _, m := range mboxes {
		seen[m.ID] = true
		old, known := n.mboxes[m.ID]
		switch {
		case !known:
			if s.listEventsFor(m.ID, m.Name)&evMailboxName != 0 {
				s.writeNotifyList(m.Name, mailboxAttrs(m), "")
			}
		case old.Name != m.Name:
			if (s.listEventsFor(m.ID, m.Name)|s.listEventsFor(m.ID, old.Name))&evMailboxName != 0 {
				s.writeNotifyList(m.Name, mailboxAttrs(m), old.Name)
			}
			fallthrough
		default:
			if err := s.notifyStatus(ctx, old, m); err != nil {
				return err
			}
		}
		n.mboxes[m.ID] = m
	}
	var gone []meta.Mailbox
	for id, m := range n.mboxes {
		if !seen[id] {
			gone = append(gone, m)
			delete(n.mboxes, id)
		}
	}
	slices.SortFunc(gone, func(a, b meta.Mailbox) int { return cmp.Compare(a.Name, b.Name) })
	for _, m := range gone {
		if n.eventsFor(m.Name, n.subs[m.Name])&evMailboxName != 0 {
			s.writeNotifyList(m.Name, []string{`\NonExistent`}, "")
		}
	}
	return nil
}

func mailboxAttrs(m meta.Mailbox) []string {
	if m.SpecialUse != "" {
		return []string{m.SpecialUse}
	}
	return nil
}

// notifyStatus sends STATUS for a mailbox other than the selected one when
// its counters changed in a way the client asked to hear about.
func (s *session) notifyStatus(ctx context.Context, old, m meta.Mailbox) error {
	if s.sel != nil && s.sel.mbox.ID == m.ID {
		return nil
	}
	n := s.notify
	ev := n.eventsFor(m.Name, n.subs[m.Name])
	withModSeq := ev&evFlagChange != 0 && hasCap("CONDSTORE")
	messages := old.Messages != m.Messages || old.UIDNext != m.UIDNext || old.UIDValidity != m.UIDValidity
	flags := old.Unseen != m.Unseen || (withModSeq && old.HighestModSeq != m.HighestModSeq)
	if !(messages && ev&evMessage != 0) && !(flags && ev&evFlagChange != 0) {
		return nil
	}
	items := []string{"MESSAGES", "UIDNEXT", "UNSEEN"}
	if old.UIDValidity != m.UIDValidity {
		items = append(items, "UIDVALIDITY")
	}
	if withModSeq {
		items = append(items, "HIGHESTMODSEQ")
	}
	return s.writeStatus(ctx, m, items)
}

// writeNotifyList writes "* LIST (attrs) "/" name", with the OLDNAME
// extended item of a renamed mailbox (RFC 5465 section 5.4).
func (s *session) writeNotifyList(name string, attrs []string, oldName string) {
	s.enc.Raw("* LIST (").Raw(strings.Join(attrs, " ")).Raw(`) "/" `)
	s.writeName(name)
	if oldName != "" {
		s.enc.Raw(` ("OLDNAME" (`)
		s.writeName(oldName)
		s.enc.Raw("))")
	}
	s.enc.CRLF()
}

// notifySubscriptions compares the subscription list with the snapshot
// and sends LIST for each change (SubscriptionChange).
func (s *session) notifySubscriptions(ctx context.Context) error {
	n := s.notify
	list, err := s.gw.deps.Meta.Subscriptions(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(list))
	for _, name := range list {
		now[name] = true
	}
	var diff []string
	for name := range now {
		if !n.subs[name] {
			diff = append(diff, name)
		}
	}
	for name := range n.subs {
		if !now[name] {
			diff = append(diff, name)
		}
	}
	slices.Sort(diff)
	exists := make(map[string]meta.Mailbox, len(n.mboxes))
	for _, m := range n.mboxes {
		exists[m.Name] = m
	}
	for _, name := range diff {
		m, ok := exists[name]
		ev := n.eventsFor(name, true) | n.eventsFor(name, false)
		if ok {
			ev = s.listEventsFor(m.ID, name) | ev
		}
		if ev&evSubscriptionChange == 0 {
			continue
		}
		var attrs []string
		if !ok {
			attrs = append(attrs, `\NonExistent`)
		}
		if now[name] {
			attrs = append(attrs, `\Subscribed`)
		}
		s.writeNotifyList(name, attrs, "")
	}
	n.subs = now
	return nil
}

// notifyFetchNew sends the fetch-att of "SELECTED (MessageNew (...))" for
// messages announced in the selected mailbox since the last call. Body
// sections are sent as with PEEK: a notification does not set \Seen.
func (s *session) notifyFetchNew(ctx context.Context) {
	n, v := s.notify, s.sel
	if n == nil || n.selected == nil || n.selected.fetch == nil || v == nil {
		return
	}
	announced := v.uids[:min(v.exists, len(v.uids))]
	top := mail.UID(0)
	if len(announced) > 0 {
		top = announced[len(announced)-1]
	}
	if n.selView != v {
		// Newly selected: SELECT announced everything so far.
		n.selView, n.selMax = v, top
		return
	}
	var uids mail.UIDSet
	for i := len(announced) - 1; i >= 0 && announced[i] > n.selMax; i-- {
		if !v.pendingExpunge[announced[i]] {
			uids = uids.Add(announced[i])
		}
	}
	n.selMax = max(n.selMax, top)
	if uids.Empty() {
		return
	}
	items := *n.selected.fetch
	items.uid = true
	entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, v.mbox.ID, uids, items.fields(), 0)
	if err != nil {
		s.logger.Warn("fetch new messages for NOTIFY", "err", err)
		return
	}
	for _, e := range entries {
		if seq := v.seqOf(e.UID); seq > 0 {
			if err := s.writeFetch(ctx, seq, e, &items, false); err != nil {
				// Part of the FETCH may be on the wire: the
				// connection cannot go on.
				s.logger.Warn("fetch new messages for NOTIFY", "err", err)
				_ = s.conn.Close()
				return
			}
		}
	}
}
