package imapsearch

import (
	"bufio"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// FuzzParseSearch feeds arbitrary bytes to ParseSearch: it must not panic
// nor hang, must stop at the end of the line, and whatever it accepts
// must evaluate without panicking.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		"ALL", "RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 OR (SEEN 1:*) NOT UID $",
		`HEADER "X-A" {3}` + "\r\nabc", `MODSEQ "/flags/\\seen" all 5`, "SENTSINCE 1-Feb-1994 BODY x",
		"TEXT \"\"", "*:1,3 UNKEYWORD $a LARGER 5 SMALLER 99999999999", "NOT NOT NOT (((ALL)))",
		"CHARSET KOI8-R ALL", "OR OR OR", "UID 4294967295:1", "~{2+}\r\nab",
	} {
		f.Add([]byte(s))
	}
	msgs, st := fixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := wire.NewDecoder(bufio.NewReader(bytes.NewReader(append(data, '\r', '\n'))))
		d.MaxLine = 4096
		d.MaxLiteral = 4096
		p, err := ParseSearch(d, ParseOptions{MaxTextBytes: 1 << 16})
		if err != nil {
			return
		}
		if !d.AtEOL() {
			t.Fatalf("accepted %q without reaching the end of the line", data)
		}
		_ = p.String()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := p.Eval(ctx, msgs, st); err != nil {
			t.Fatalf("Eval(%s): %v", p, err)
		}
	})
}
