package imapsearch

import (
	"slices"

	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// WriteSearch writes "* SEARCH 1 2 3" and its CRLF (RFC 3501 section
// 7.2.5); with no numbers, "* SEARCH".
func WriteSearch(e *wire.Encoder, nums []uint32) {
	WriteSearchModSeq(e, nums, 0)
}

// WriteSearchModSeq writes a SEARCH response with the MODSEQ of RFC 7162
// section 3.1.5, "* SEARCH 2 5 (MODSEQ 917162500)", when the search used
// the MODSEQ key; modseq 0 (no match) leaves it out.
func WriteSearchModSeq(e *wire.Encoder, nums []uint32, modseq uint64) {
	writeNums(e, "* SEARCH", nums, modseq)
}

// WriteSort writes "* SORT 2 3 1" (RFC 5256), in the given order, with the
// RFC 7162 MODSEQ when modseq is not 0.
func WriteSort(e *wire.Encoder, nums []uint32, modseq uint64) {
	writeNums(e, "* SORT", nums, modseq)
}

func writeNums(e *wire.Encoder, head string, nums []uint32, modseq uint64) {
	e.Raw(head)
	for _, n := range nums {
		e.SP().Number(uint64(n))
	}
	if modseq > 0 && len(nums) > 0 {
		e.Raw(" (MODSEQ ").Number(modseq).Close()
	}
	e.CRLF()
}

// WriteESearch writes an ESEARCH response (RFC 4731, RFC 9051 section
// 7.3.4) and its CRLF, e.g. `* ESEARCH (TAG "a1") UID MIN 1 MAX 9 COUNT 3
// ALL 1:3,9`, from the matched numbers (sequence numbers or, with uid,
// UIDs; any order). MIN, MAX and ALL are left out when nothing matched;
// COUNT is always given when asked for. Without a RETURN clause (an
// IMAP4rev2 SEARCH), ALL is written. highestModSeq, when not 0, is added
// as "MODSEQ n" (RFC 7162 section 3.1.5; see ResultModSeq).
func WriteESearch(e *wire.Encoder, tag string, uid bool, opts ReturnOptions, nums []uint32, highestModSeq uint64) {
	if !opts.Set {
		opts.All = true
	}
	sorted := slices.Clone(nums)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	e.Raw("* ESEARCH (TAG ").String(tag).Close()
	if uid {
		e.Raw(" UID")
	}
	if len(sorted) > 0 {
		if opts.Min {
			e.Raw(" MIN ").Number(uint64(sorted[0]))
		}
		if opts.Max {
			e.Raw(" MAX ").Number(uint64(sorted[len(sorted)-1]))
		}
	}
	if opts.Count {
		e.Raw(" COUNT ").Number(uint64(len(sorted)))
	}
	if opts.All && len(sorted) > 0 {
		e.Raw(" ALL ").Raw(CompressSet(sorted))
	}
	if highestModSeq > 0 && len(sorted) > 0 {
		e.Raw(" MODSEQ ").Number(highestModSeq)
	}
	e.CRLF()
}

// CompressSet writes ascending, distinct numbers as a sequence set with
// ranges: 1,2,3,5,7,8 becomes "1:3,5,7:8".
func CompressSet(sorted []uint32) string {
	var b []byte
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, sorted[i])
		if j > i {
			b = append(b, ':')
			b = appendUint(b, sorted[j])
		}
		i = j + 1
	}
	return string(b)
}

func appendUint(b []byte, n uint32) []byte {
	var tmp [10]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ResultModSeq is the MODSEQ to report with a search result (RFC 7162
// section 3.1.5): 0 when nothing matched; with RETURN MIN and/or MAX
// alone, the highest mod-sequence of those messages; otherwise the
// highest of all matched messages. matched are indexes into msgs, in
// sequence order, as Eval returns them.
func ResultModSeq(msgs []Message, matched []int, opts ReturnOptions) uint64 {
	if len(matched) == 0 {
		return 0
	}
	var hi uint64
	if opts.Set && (opts.Min || opts.Max) && !opts.All && !opts.Count {
		if opts.Min {
			hi = uint64(msgs[matched[0]].ModSeq)
		}
		if opts.Max {
			hi = max(hi, uint64(msgs[matched[len(matched)-1]].ModSeq))
		}
		return hi
	}
	for _, i := range matched {
		hi = max(hi, uint64(msgs[i].ModSeq))
	}
	return hi
}
