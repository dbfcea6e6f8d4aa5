package meta

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxPOP3KeepDays bounds POP3Policy.KeepDays (100 years), so that
// KeepDays*24h never overflows a time.Duration.
const MaxPOP3KeepDays = 36500

// ParsePOP3Keep parses the leave-on-server setting shared by mailctl
// (--keep) and the server-wide default flag:
//
//	"none" (or "delete")  POP3Delete: DELE+QUIT expunges at once
//	"forever"             POP3KeepForever
//	"<N>d"                POP3KeepDays with KeepDays N, 1 <= N <= 36500
//	"default" (or "")     POP3Default: the server-wide default applies
//
// LoginDelay is left at 0. A server-wide default cannot itself be
// "default": callers parsing one must reject Mode POP3Default.
func ParsePOP3Keep(s string) (POP3Policy, error) {
	switch s {
	case "", "default":
		return POP3Policy{Mode: POP3Default}, nil
	case "none", "delete":
		return POP3Policy{Mode: POP3Delete}, nil
	case "forever":
		return POP3Policy{Mode: POP3KeepForever}, nil
	}
	digits, ok := strings.CutSuffix(s, "d")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return POP3Policy{}, fmt.Errorf("%w: POP3 keep %q: want none, forever, default or Nd (e.g. 14d)", ErrInvalidArgument, s)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > MaxPOP3KeepDays {
		return POP3Policy{}, fmt.Errorf("%w: POP3 keep %q: days must be 1 to %d", ErrInvalidArgument, s, MaxPOP3KeepDays)
	}
	return POP3Policy{Mode: POP3KeepDays, KeepDays: n}, nil
}

// KeepString is the inverse of ParsePOP3Keep: "none", "forever", "14d",
// or "" for the server default. An unknown mode is returned as it is.
func (p POP3Policy) KeepString() string {
	switch p.Mode {
	case POP3Default:
		return ""
	case POP3Delete:
		return "none"
	case POP3KeepForever:
		return "forever"
	case POP3KeepDays:
		return strconv.Itoa(p.KeepDays) + "d"
	}
	return p.Mode
}
