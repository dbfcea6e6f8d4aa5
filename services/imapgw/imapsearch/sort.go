package imapsearch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// SortKey is a SORT criterion (RFC 5256 section 3, RFC 5957).
type SortKey uint8

// Sort keys.
const (
	SortArrival SortKey = iota + 1
	SortCc
	SortDate
	SortFrom
	SortSize
	SortSubject
	SortTo
	SortDisplayFrom
	SortDisplayTo
)

var sortKeyNames = map[string]SortKey{
	"ARRIVAL": SortArrival, "CC": SortCc, "DATE": SortDate, "FROM": SortFrom,
	"SIZE": SortSize, "SUBJECT": SortSubject, "TO": SortTo,
	"DISPLAYFROM": SortDisplayFrom, "DISPLAYTO": SortDisplayTo,
}

// SortCriterion is one sort key, possibly reversed.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// ParseSort reads the arguments of SORT (or UID SORT) after the command
// name and its SP: "(" sort-criteria ")" SP charset SP search-keys, up to
// the CRLF. Errors are as for ParseSearch.
func ParseSort(d *wire.Decoder, opts ParseOptions) ([]SortCriterion, *Program, error) {
	var crit []SortCriterion
	reverse := false
	err := d.List(func() error {
		a, err := d.Atom()
		if err != nil {
			return err
		}
		a = strings.ToUpper(a)
		if a == "REVERSE" {
			if reverse {
				return syntaxf("REVERSE REVERSE in sort criteria")
			}
			reverse = true
			return nil
		}
		k, ok := sortKeyNames[a]
		if !ok {
			return syntaxf("unknown sort criterion %q", a)
		}
		crit = append(crit, SortCriterion{Key: k, Reverse: reverse})
		reverse = false
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if reverse || len(crit) == 0 {
		return nil, nil, syntaxf("incomplete sort criteria")
	}
	if err := d.SP(); err != nil {
		return nil, nil, err
	}
	prog, err := parseSearchCriteria(d, opts)
	if err != nil && prog == nil {
		return nil, nil, err
	}
	return crit, prog, err
}

// Sort returns a permutation of the indexes of msgs in the order of the
// criteria (RFC 5256): messages equal under all of them stay in sequence
// number order. Only when a message has no Structure is its header read
// through acc.
func Sort(ctx context.Context, msgs []Message, criteria []SortCriterion, acc Accessor) ([]int, error) {
	needEnv := false
	for _, c := range criteria {
		if c.Key != SortArrival && c.Key != SortSize {
			needEnv = true
		}
	}
	var sts []*mime.Structure
	if needEnv {
		var err error
		if sts, err = structures(ctx, msgs, acc); err != nil {
			return nil, err
		}
	}
	type key struct {
		s string
		t time.Time
		n int64
	}
	keys := make([][]key, len(criteria))
	for ci, c := range criteria {
		ks := make([]key, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			switch c.Key {
			case SortArrival:
				ks[i].t = m.InternalDate
			case SortSize:
				ks[i].n = m.Size
			case SortDate:
				ks[i].t = sentDate(sts[i], m, true)
			case SortSubject:
				b, _ := BaseSubject(sts[i].Envelope.Subject)
				ks[i].s = asciiUpper(b)
			case SortFrom, SortTo, SortCc:
				if a := firstMailbox(addressField(&sts[i].Envelope, sortField(c.Key))); a != nil {
					ks[i].s = asciiUpper(a.Mailbox)
				}
			case SortDisplayFrom, SortDisplayTo:
				if a := firstMailbox(addressField(&sts[i].Envelope, sortField(c.Key))); a != nil {
					ks[i].s = fold(displayName(a))
				}
			}
		}
		keys[ci] = ks
	}
	perm := make([]int, len(msgs))
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int {
		for ci, c := range criteria {
			ka, kb := keys[ci][a], keys[ci][b]
			r := cmp.Compare(ka.s, kb.s)
			if r == 0 {
				r = ka.t.Compare(kb.t)
			}
			if r == 0 {
				r = cmp.Compare(ka.n, kb.n)
			}
			if c.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(msgs[a].Seq, msgs[b].Seq)
	})
	return perm, nil
}

func sortField(k SortKey) string {
	switch k {
	case SortFrom, SortDisplayFrom:
		return "from"
	case SortTo, SortDisplayTo:
		return "to"
	}
	return "cc"
}

// firstMailbox is the first ordinary address of a list (group markers
// skipped), or nil.
func firstMailbox(as []mime.Address) *mime.Address {
	for i := range as {
		if as[i].Kind == mime.AddrMailbox {
			return &as[i]
		}
	}
	return nil
}

// displayName is the RFC 5957 display string: the decoded display name,
// or the addr-spec when there is none.
func displayName(a *mime.Address) string {
	if n := strings.TrimSpace(decodeHeader(a.Name)); n != "" {
		return n
	}
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// structures returns each message's Structure, reading and scanning the
// header of those that have none.
func structures(ctx context.Context, msgs []Message, acc Accessor) ([]*mime.Structure, error) {
	sts := make([]*mime.Structure, len(msgs))
	for i := range msgs {
		if st := msgs[i].Structure; st != nil {
			sts[i] = st
			continue
		}
		h, err := acc.Header(ctx, &msgs[i])
		if err != nil {
			return nil, fmt.Errorf("read header of message uid %d: %w", msgs[i].UID, err)
		}
		sts[i] = scanHeader(h)
	}
	return sts, nil
}
