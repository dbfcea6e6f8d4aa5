package mail

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Search sends SEARCH (UID SEARCH with {uid: true}) and returns the
// matching numbers. criteria is an object whose keys are ANDed:
//
//	{ seq: "1:10", uid: "5:*", since: "2025-01-31", before, sentSince,
//	  sentBefore, header: {Subject: "x"}, body: ["x"], text: ["x"],
//	  flag: ["\\Seen"], notFlag: ["\\Deleted"], larger: 1000,
//	  smaller: 5000, not: {...}, or: [{...}, {...}] }
//
// An empty object matches all messages.
func (c *IMAPClient) Search(criteria map[string]any, opts map[string]any) ([]uint32, error) {
	_, uid, err := numSetArg("1", opts)
	if err != nil {
		return nil, fmt.Errorf("imap SEARCH: %w", err)
	}
	sc, err := parseCriteria(criteria)
	if err != nil {
		return nil, fmt.Errorf("imap SEARCH: %w", err)
	}
	var d *imap.SearchData
	err = c.do(cmdName("SEARCH", uid), func() error {
		var err error
		if uid {
			d, err = c.c.UIDSearch(sc, nil).Wait()
		} else {
			d, err = c.c.Search(sc, nil).Wait()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if uid {
		uids := d.AllUIDs()
		out := make([]uint32, 0, len(uids))
		for _, u := range uids {
			out = append(out, uint32(u))
		}
		return out, nil
	}
	out := d.AllSeqNums()
	if out == nil {
		out = []uint32{}
	}
	return out, nil
}

func parseCriteria(m map[string]any) (*imap.SearchCriteria, error) {
	sc := &imap.SearchCriteria{}
	for k, v := range m {
		var err error
		switch k {
		case "seq", "uid":
			var s string
			if s, err = asString(k, v); err == nil {
				var ns imap.NumSet
				if ns, err = parseNumSet(s, k == "uid"); err == nil {
					if k == "uid" {
						sc.UID = append(sc.UID, ns.(imap.UIDSet))
					} else {
						sc.SeqNum = append(sc.SeqNum, ns.(imap.SeqSet))
					}
				}
			}
		case "since":
			sc.Since, err = asDate(k, v)
		case "before":
			sc.Before, err = asDate(k, v)
		case "sentSince":
			sc.SentSince, err = asDate(k, v)
		case "sentBefore":
			sc.SentBefore, err = asDate(k, v)
		case "header":
			hm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("criterion header: want an object, got %T", v)
			}
			for hk, hv := range hm {
				s, err := asString("header "+hk, hv)
				if err != nil {
					return nil, err
				}
				sc.Header = append(sc.Header, imap.SearchCriteriaHeaderField{Key: hk, Value: s})
			}
		case "body":
			sc.Body, err = asStrings(k, v)
		case "text":
			sc.Text, err = asStrings(k, v)
		case "flag":
			var fs []string
			fs, err = asStrings(k, v)
			sc.Flag = toFlags(fs)
		case "notFlag":
			var fs []string
			fs, err = asStrings(k, v)
			sc.NotFlag = toFlags(fs)
		case "larger":
			sc.Larger, err = asInt(k, v)
		case "smaller":
			sc.Smaller, err = asInt(k, v)
		case "not":
			nm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("criterion not: want an object, got %T", v)
			}
			var n *imap.SearchCriteria
			if n, err = parseCriteria(nm); err == nil {
				sc.Not = append(sc.Not, *n)
			}
		case "or":
			arr, ok := v.([]any)
			if !ok || len(arr) != 2 {
				return nil, fmt.Errorf("criterion or: want two objects")
			}
			var pair [2]imap.SearchCriteria
			for i, a := range arr {
				am, ok := a.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("criterion or: want two objects")
				}
				n, err := parseCriteria(am)
				if err != nil {
					return nil, err
				}
				pair[i] = *n
			}
			sc.Or = append(sc.Or, pair)
		default:
			err = fmt.Errorf("unknown criterion %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func asStrings(k string, v any) ([]string, error) {
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("criterion %s: want a string or a list of strings, got %T", k, v)
	}
	out := make([]string, 0, len(arr))
	for _, a := range arr {
		s, err := asString(k, a)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func asInt(k string, v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	}
	return 0, fmt.Errorf("criterion %s: want a number, got %T", k, v)
}

// asDate takes "2006-01-02" or an RFC 3339 time; only the date counts.
func asDate(k string, v any) (time.Time, error) {
	s, err := asString(k, v)
	if err != nil {
		return time.Time{}, err
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("criterion %s: want YYYY-MM-DD, got %q", k, s)
}
