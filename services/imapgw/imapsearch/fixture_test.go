package imapsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	stdmime "mime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// store is an Accessor over in-memory messages that counts reads, so
// tests can check that bytes are read only when needed.
type store struct {
	mu      sync.Mutex
	raw     map[mail.UID][]byte
	headers int
	bodies  int
}

func (s *store) Header(_ context.Context, m *Message) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers++
	raw, ok := s.raw[m.UID]
	if !ok {
		return nil, fmt.Errorf("no message %d", m.UID)
	}
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return raw, nil
	}
	return raw[:end+4], nil
}

func (s *store) Body(_ context.Context, m *Message) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies++
	raw, ok := s.raw[m.UID]
	if !ok {
		return nil, fmt.Errorf("no message %d", m.UID)
	}
	return io.NopCloser(bytes.NewReader(raw)), nil
}

func (s *store) reads() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers, s.bodies
}

type msgSpec struct {
	uid      mail.UID
	flags    []mail.Flag
	internal time.Time
	modseq   mail.ModSeq
	recent   bool
	raw      string
}

// crlf turns "\n" line ends into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func wrap76(s string) string {
	var sb strings.Builder
	for len(s) > 76 {
		sb.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	sb.WriteString(s + "\r\n")
	return sb.String()
}

func day(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

// fixture is a mailbox of five messages covering headers, encodings,
// charsets, multipart, an encapsulated message and a large body.
func fixture(t testing.TB) ([]Message, *store) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	filler := strings.Repeat("lorem ipsum dolor sit amet\r\n", 4000) // ~112 KB
	specs := []msgSpec{
		{uid: 1, flags: []mail.Flag{mail.FlagSeen, mail.FlagAnswered}, internal: day(2024, 1, 10, 12), modseq: 10, raw: crlf(`From: "Alice Example" <alice@example.com>
To: bob@example.org
Cc: Carol <carol@example.net>
Subject: Hello world
Date: Tue, 1 Feb 1994 23:30:00 -0800
Message-ID: <m1@example.com>
X-Priority: 1

Plain body with a Needle inside.
`)},
		{uid: 2, flags: []mail.Flag{mail.FlagFlagged, "$Important"}, internal: day(2024, 1, 11, 23), modseq: 20, recent: true, raw: crlf(`From: ` + stdmime.BEncoding.Encode("utf-8", "Jörg Müller") + ` <joerg@example.de>
To: alice@example.com
Subject: =?iso-8859-1?q?Gr=FC=DFe?= =?utf-8?b?` + b64([]byte("日本語")) + `?=
Date: Wed, 2 Feb 1994 10:00:00 +0000
Message-ID: <m2@example.de>
In-Reply-To: <m1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Viele Gr=FC=DFe aus M=
=FCnchen, und ein Stra=DFenname.
`)},
		{uid: 5, flags: []mail.Flag{mail.FlagDeleted, mail.FlagDraft}, internal: day(2024, 1, 12, 0), modseq: 30, raw: crlf(`From: dave@example.com
To: alice@example.com, Team: eve@example.com, frank@example.com;
Bcc: secret-bcc@example.com
Subject: Re: [list] Fwd: Hello world (fwd)
Date: Thu, 3 Feb 1994 08:00:00 +0100
Message-ID: <m5@example.com>
References: <m1@example.com> <m2@example.de>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

`) + wrap76(b64([]byte("The secret password is swordfish. Ünïcödé text follows.\r\n"))) + crlf(`--XX
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

`) + wrap76(b64([]byte("zebra in an attachment"))) + crlf(`--XX--
`)},
		{uid: 7, internal: day(2024, 1, 12, 23), modseq: 40, raw: crlf(`From: Grace <grace@example.com>
To: alice@example.com
Subject: Fwd: forwarded note
Date: garbage date
Message-ID: <m7@example.com>
MIME-Version: 1.0
Content-Type: message/rfc822

From: inner@example.com
Subject: Inner subject
Content-Type: text/plain

nested body text
`)},
		{uid: 9, flags: []mail.Flag{mail.FlagSeen}, internal: day(2024, 2, 1, 8), modseq: 50, recent: true, raw: crlf(`From: big@example.com
To: alice@example.com
Subject: large

`) + filler + "the tail marker\r\n"},
	}
	st := &store{raw: map[mail.UID][]byte{}}
	var msgs []Message
	for i, s := range specs {
		structure, err := mime.Scan(strings.NewReader(s.raw), mime.Limits{})
		if err != nil {
			t.Fatalf("scan message %d: %v", s.uid, err)
		}
		st.raw[s.uid] = []byte(s.raw)
		msgs = append(msgs, Message{
			Seq: uint32(i + 1), UID: s.uid, Flags: s.flags, InternalDate: s.internal,
			Size: int64(len(s.raw)), ModSeq: s.modseq, Recent: s.recent, Structure: structure,
		})
	}
	return msgs, st
}

// decoder returns a decoder over one command line.
func decoder(line string) *wire.Decoder {
	return wire.NewDecoder(bufio.NewReader(strings.NewReader(line + "\r\n")))
}

func uidsOf(msgs []Message, idx []int) []mail.UID {
	out := []mail.UID{}
	for _, i := range idx {
		out = append(out, msgs[i].UID)
	}
	return out
}
