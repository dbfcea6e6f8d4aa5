package meta

import (
	"fmt"
	"strings"
)

// LocalPart returns the local part of a canonical address: what comes
// before its last '@', or the whole address when it has none. It is what
// LookupAddress matches a bare local part against.
func LocalPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// CheckAlias checks the shape of an alias that a backend has already made
// canonical by its login rules: local@domain, exactly one '@', neither
// part empty. The error wraps ErrInvalidArgument.
func CheckAlias(alias string) error {
	local, domain, ok := strings.Cut(alias, "@")
	if !ok || local == "" || domain == "" || strings.ContainsRune(domain, '@') {
		return fmt.Errorf("%w: alias %q: not of the form local@domain", ErrInvalidArgument, alias)
	}
	return nil
}
