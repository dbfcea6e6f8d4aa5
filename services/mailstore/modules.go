// Package mailstore wires the components of the single binary. Target
// names are constants; each module has one init function; one dependency
// map says what each needs, so -target=all runs the same code as separate
// processes do (the components always talk over gRPC).
package mailstore

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Targets and internal modules.
const (
	TargetAll = "all"
	Metadata  = "metadata"
	Blob      = "blob"
	IMAP      = "imap"
	POP3      = "pop3"
	LMTP      = "lmtp"

	// Internal modules, never targets of their own.
	httpServer = "http-server"
	metaStore  = "meta-store"
	blobStore  = "blob-store"
	metaClient = "meta-client"
	blobClient = "blob-client"
)

// deps is the dependency map. "all" lists only dependencies.
var deps = map[string][]string{
	TargetAll:  {Metadata, Blob, IMAP, POP3, LMTP},
	IMAP:       {httpServer, metaClient, blobClient},
	POP3:       {httpServer, metaClient, blobClient},
	LMTP:       {httpServer, metaClient, blobClient},
	Metadata:   {httpServer, metaStore, blobClient},
	Blob:       {httpServer, blobStore},
	httpServer: nil,
	metaStore:  nil,
	blobStore:  nil,
	metaClient: nil,
	blobClient: nil,
}

// userTargets can be named in -target.
var userTargets = []string{TargetAll, Metadata, Blob, IMAP, POP3, LMTP}

// Targets lists the names -target accepts.
func Targets() []string { return slices.Clone(userTargets) }

// ParseTargets splits and checks a -target value.
func ParseTargets(s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(userTargets, t) {
			return nil, fmt.Errorf("-target: unknown target %q (want %s)", t, strings.Join(userTargets, ", "))
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-target: no target given")
	}
	return out, nil
}

// expand returns every module the targets need.
func expand(targets []string) map[string]bool {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
	}
	for _, t := range targets {
		visit(t)
	}
	return seen
}

// order returns the modules in dependency order (dependencies first).
func order(modules map[string]bool) []string {
	names := make([]string, 0, len(modules))
	for m := range modules {
		names = append(names, m)
	}
	sort.Strings(names)
	var out []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if done[m] {
			return
		}
		done[m] = true
		ds := slices.Clone(deps[m])
		sort.Strings(ds)
		for _, d := range ds {
			visit(d)
		}
		out = append(out, m)
	}
	for _, m := range names {
		visit(m)
	}
	return out
}
