// Command k6 is k6 with the k6/x/mail extension (IMAP, POP3 and LMTP
// clients) compiled in. xk6 is not available at a current version here, so
// the binary is a plain main package: the blank import registers the
// extension and cmd.Execute runs k6 as usual.
package main

import (
	k6cmd "go.k6.io/k6/cmd"

	_ "github.com/mailstore/mailstore/loadtest/mail"
)

func main() {
	k6cmd.Execute()
}
