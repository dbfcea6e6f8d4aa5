package lmtpgw

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Some local tools send a recipient without a domain (RCPT TO:<john>),
// which the issue asks us to accept: it names the account whose login is
// "john", or the single account with that local part. go-smtp's path
// parser requires a domain and answers 501 before the gateway sees the
// address, and it has no hook for this; so the gateway extends it from
// below: the connection go-smtp reads from rewrites such a command to
// RCPT TO:<john@bare-local-part.invalid> (RFC 2606 reserves .invalid), and
// Rcpt turns the marker back into a bare local-part lookup.
//
// The rewriter follows the command stream just enough to leave message
// bodies alone (DATA up to the lone dot, BDAT chunks by their size) and
// stops at STARTTLS, after which the stream is ciphertext.
const bareDomain = "bare-local-part.invalid"

type rewriteState uint8

const (
	stateCommand rewriteState = iota
	stateData
	stateBDAT
	statePassthrough
)

type rcptRewriter struct {
	r       *bufio.Reader
	pending []byte
	state   rewriteState
	bdat    int64 // bytes of the current BDAT chunk still to pass
	midLine bool  // the last read ended inside a line
	pipe    bool  // a STARTTLS line is in pending: pass everything after it
}

func newRCPTRewriter(r io.Reader) *rcptRewriter {
	return &rcptRewriter{r: bufio.NewReaderSize(r, 8<<10)}
}

func (w *rcptRewriter) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// fill reads the next piece: a line in the command and DATA states, raw
// bytes in a BDAT chunk or after STARTTLS.
func (w *rcptRewriter) fill() error {
	switch w.state {
	case statePassthrough:
		return w.raw(1 << 15)
	case stateBDAT:
		if err := w.raw(min(w.bdat, 1<<15)); err != nil {
			return err
		}
		w.bdat -= int64(len(w.pending))
		if w.bdat <= 0 {
			w.state = stateCommand
		}
		return nil
	}
	line, err := w.r.ReadSlice('\n')
	if len(line) == 0 && err != nil {
		return err
	}
	start := !w.midLine
	w.midLine = errors.Is(err, bufio.ErrBufferFull)
	if err != nil && !w.midLine && !errors.Is(err, io.EOF) {
		return err
	}
	out := line
	if start && !w.midLine {
		out = w.line(line)
	}
	w.pending = append(w.pending[:0], out...)
	return nil
}

// raw passes up to n bytes through.
func (w *rcptRewriter) raw(n int64) error {
	buf := make([]byte, n)
	k, err := w.r.Read(buf)
	w.pending = buf[:k]
	if k > 0 {
		return nil
	}
	return err
}

// line handles one whole line and returns what go-smtp is to read.
func (w *rcptRewriter) line(l []byte) []byte {
	if w.state == stateData {
		if bytes.Equal(l, []byte(".\r\n")) || bytes.Equal(l, []byte(".\n")) {
			w.state = stateCommand
		}
		return l
	}
	body := bytes.TrimRight(l, "\r\n")
	verb, rest, _ := bytes.Cut(body, []byte(" "))
	switch {
	case bytes.EqualFold(verb, []byte("DATA")) && len(rest) == 0:
		w.state = stateData
	case bytes.EqualFold(verb, []byte("BDAT")):
		sizeArg, _, _ := bytes.Cut(rest, []byte(" "))
		if n, err := strconv.ParseInt(string(sizeArg), 10, 64); err == nil && n > 0 {
			w.state, w.bdat = stateBDAT, n
		}
	case bytes.EqualFold(verb, []byte("STARTTLS")):
		w.state = statePassthrough
	case bytes.EqualFold(verb, []byte("RCPT")):
		return rewriteBareRCPT(l)
	}
	return l
}

// rewriteBareRCPT turns RCPT TO:<local> (no '@') into
// RCPT TO:<local@bareDomain>, keeping any parameters.
func rewriteBareRCPT(l []byte) []byte {
	i := bytes.IndexByte(l, '<')
	j := bytes.IndexByte(l, '>')
	if i < 0 || j < i+2 || bytes.IndexByte(l[i:j], '@') >= 0 || !bytes.HasPrefix(bytes.ToUpper(bytes.TrimSpace(l[4:i])), []byte("TO:")) {
		return l
	}
	out := make([]byte, 0, len(l)+len(bareDomain)+1)
	out = append(out, l[:j]...)
	out = append(out, '@')
	out = append(out, bareDomain...)
	return append(out, l[j:]...)
}
