// Package mutf7 converts mailbox names between UTF-8 and the modified
// UTF-7 of RFC 3501 section 5.1.3, which IMAP4rev1 clients that did not
// enable UTF8=ACCEPT or IMAP4rev2 use on the wire. Names are stored as
// UTF-8; the gateway encodes them on the way out and decodes them on the
// way in.
//
// Decode is strict: it accepts only the one canonical encoding of each name
// (the form Encode produces), so that two different wire names can never
// map to the same stored name and a name round-trips byte for byte.
package mutf7

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid is returned by Decode for input that is not canonical
// modified UTF-7.
var ErrInvalid = errors.New("invalid modified UTF-7")

// alphabet is modified BASE64: "," replaces "/", no padding.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var decodeMap = func() (m [256]int8) {
	for i := range m {
		m[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		m[alphabet[i]] = int8(i)
	}
	return m
}()

// direct reports whether c stands for itself: printable US-ASCII except
// "&", which is written "&-".
func direct(r rune) bool { return r >= 0x20 && r <= 0x7e && r != '&' }

// Encode returns s in modified UTF-7. Invalid UTF-8 bytes are encoded as
// U+FFFD.
func Encode(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	var units []uint16
	flush := func() {
		if len(units) == 0 {
			return
		}
		sb.WriteByte('&')
		writeBase64(&sb, units)
		sb.WriteByte('-')
		units = units[:0]
	}
	for _, r := range s { // invalid bytes come out as utf8.RuneError
		switch {
		case r == '&':
			flush()
			sb.WriteString("&-")
		case direct(r):
			flush()
			sb.WriteRune(r)
		default:
			units = utf16.AppendRune(units, r)
		}
	}
	flush()
	return sb.String()
}

// writeBase64 writes the UTF-16BE bytes of units in modified BASE64,
// zero-padding the last sextet.
func writeBase64(sb *strings.Builder, units []uint16) {
	var acc uint32
	bits := 0
	for _, u := range units {
		for _, b := range [2]byte{byte(u >> 8), byte(u)} {
			acc = acc<<8 | uint32(b)
			bits += 8
			for bits >= 6 {
				bits -= 6
				sb.WriteByte(alphabet[(acc>>bits)&0x3f])
			}
		}
	}
	if bits > 0 {
		sb.WriteByte(alphabet[(acc<<(6-bits))&0x3f])
	}
}

// Decode returns the UTF-8 form of the modified UTF-7 string s. It
// rejects 8-bit and control characters, an unterminated or empty-but-not-"&-"
// shift, BASE64 that encodes a character that must be written directly,
// non-zero or excess padding bits, an odd number of bytes, broken
// surrogate pairs, and two shifts in a row (which the shortest form would
// have merged).
func Decode(s string) (string, error) {
	var sb strings.Builder
	sb.Grow(len(s))
	lastShiftEnd := -1 // index just past the last "-" closing a base64 shift
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: byte %#x at %d", ErrInvalid, c, i)
		}
		if c != '&' {
			sb.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated shift at %d", ErrInvalid, i)
		}
		b64 := s[i+1 : i+1+end]
		if b64 == "" {
			sb.WriteByte('&')
			i += 2
			continue
		}
		if lastShiftEnd == i {
			return "", fmt.Errorf("%w: adjacent shifts at %d", ErrInvalid, i)
		}
		if err := decodeBase64(&sb, b64); err != nil {
			return "", fmt.Errorf("%w: at %d: %s", ErrInvalid, i, err.Error())
		}
		i += end + 2
		lastShiftEnd = i
	}
	return sb.String(), nil
}

func decodeBase64(sb *strings.Builder, b64 string) error {
	var acc uint32
	bits := 0
	var units []uint16
	var pending byte
	half := false
	for i := 0; i < len(b64); i++ {
		v := decodeMap[b64[i]]
		if v < 0 {
			return fmt.Errorf("bad BASE64 character %q", b64[i])
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			b := byte(acc >> bits)
			if half {
				units = append(units, uint16(pending)<<8|uint16(b))
			} else {
				pending = b
			}
			half = !half
		}
	}
	if bits >= 6 || acc&(1<<bits-1) != 0 {
		return errors.New("bad BASE64 padding")
	}
	if half {
		return errors.New("odd number of UTF-16 bytes")
	}
	for i := 0; i < len(units); i++ {
		u := units[i]
		var r rune
		switch {
		case utf16.IsSurrogate(rune(u)):
			if u >= 0xdc00 || i+1 >= len(units) {
				return errors.New("broken surrogate pair")
			}
			r = utf16.DecodeRune(rune(u), rune(units[i+1]))
			if r == utf8.RuneError {
				return errors.New("broken surrogate pair")
			}
			i++
		default:
			r = rune(u)
		}
		if direct(r) || r == '&' {
			return fmt.Errorf("printable ASCII %q must not be encoded", r)
		}
		sb.WriteRune(r)
	}
	return nil
}
