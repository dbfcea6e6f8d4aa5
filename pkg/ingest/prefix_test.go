package ingest

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
)

// checkPrefixed checks that r stored prefix+testMessage with the structure
// of a scan of those bytes, in the entry as in the result.
func (e *env) checkPrefixed(t *testing.T, acct mail.AccountID, mbox mail.MailboxID, r Result, prefix string) {
	t.Helper()
	want := prefix + testMessage
	if got := e.blobBytes(t, acct, r.Blob); string(got) != want {
		t.Errorf("blob = %q, want %q", got, want)
	}
	if r.Size != int64(len(want)) {
		t.Errorf("size = %d, want %d", r.Size, len(want))
	}
	wantSt, err := mime.Scan(strings.NewReader(want), mime.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Structure, wantSt) {
		t.Errorf("result structure:\n got %+v\nwant %+v", r.Structure, wantSt)
	}
	for _, en := range e.entries(t, acct, mbox) {
		if en.Blob != r.Blob {
			continue
		}
		st, err := mime.UnmarshalStructure(en.Structure)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(len(want)) || st.HeaderSize != wantSt.HeaderSize || st.Root.Children[0].BodyOffset != wantSt.Root.Children[0].BodyOffset {
			t.Errorf("entry structure %+v, want %+v", st, wantSt)
		}
		if en.Size != int64(len(want)) {
			t.Errorf("entry size = %d", en.Size)
		}
		return
	}
	t.Errorf("no entry for blob %s", r.Blob)
}

func TestIngestPrefix(t *testing.T) {
	const prefix = "Return-Path: <a@example.com>\r\nDelivered-To: alice@example.org\r\n"
	tests := []struct {
		name string
		size int64
	}{
		{"unknown size", -1},
		{"known size", int64(len(testMessage))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			// The limit is on the message as received: the prefix comes
			// on top.
			g := e.ingester(t, Config{MaxMessageSize: int64(len(testMessage))}, nil, nil)
			res, err := g.Ingest(t.Context(), Request{
				Target: Target{Account: e.acct, Mailbox: e.inbox.ID, MailboxName: mail.Inbox, Prefix: []byte(prefix)},
				Size:   tc.size,
				Body:   strings.NewReader(testMessage),
			})
			if err != nil {
				t.Fatal(err)
			}
			e.checkPrefixed(t, e.acct, e.inbox.ID, res, prefix)
		})
	}
}

func TestIngestManyPrefix(t *testing.T) {
	prefixes := []string{
		"Delivered-To: alice@example.org\r\n",
		"Delivered-To: bob@example.org\r\n",   // same length as alice's
		"Delivered-To: bob+x@example.org\r\n", // longer
		"",                                    // none
	}
	tests := []struct {
		name        string
		spoolMemory int64
		body        func() (io.Reader, int64)
	}{
		{"spool in memory", 1 << 20, func() (io.Reader, int64) { return strings.NewReader(testMessage), -1 }},
		{"spool to file", 16, func() (io.Reader, int64) { return iotest.HalfReader(strings.NewReader(testMessage)), -1 }},
		{"reader at", 16, func() (io.Reader, int64) { return strings.NewReader(testMessage), int64(len(testMessage)) }},
		{"spool reader", 16, func() (io.Reader, int64) {
			var sp Spool
			sp.max = 16
			sp.dir = ""
			if _, err := io.Copy(&sp, strings.NewReader(testMessage)); err != nil {
				panic(err)
			}
			return sp.Reader(), sp.Size()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			bobAcct, bobInbox := e.addAccount(t, "bob", meta.Quota{})
			g := e.ingester(t, Config{MaxMessageSize: int64(len(testMessage)), SpoolMemory: tc.spoolMemory, SpoolDir: t.TempDir()}, nil, nil)
			body, size := tc.body()
			targets := []Target{
				{Account: e.acct, Mailbox: e.inbox.ID, MailboxName: mail.Inbox, Prefix: []byte(prefixes[0])},
				{Account: bobAcct, Mailbox: bobInbox.ID, MailboxName: mail.Inbox, Prefix: []byte(prefixes[1])},
				{Account: bobAcct, Mailbox: bobInbox.ID, MailboxName: mail.Inbox, Prefix: []byte(prefixes[2])},
				{Account: bobAcct, Mailbox: bobInbox.ID, MailboxName: mail.Inbox},
			}
			res, err := g.IngestMany(t.Context(), Delivery{Targets: targets, Size: size, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Err != nil {
					t.Fatalf("target %d: %v", i, r.Err)
				}
				e.checkPrefixed(t, targets[i].Account, targets[i].Mailbox, r.Result, prefixes[i])
			}
		})
	}
}

func TestSpool(t *testing.T) {
	for _, mem := range []int64{0, 5, 1 << 20} {
		sp := &Spool{max: mem, dir: t.TempDir()}
		data := bytes.Repeat([]byte("0123456789"), 10)
		for i := 0; i < len(data); i += 7 {
			if _, err := sp.Write(data[i:min(i+7, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if sp.Size() != int64(len(data)) {
			t.Errorf("mem %d: size %d", mem, sp.Size())
		}
		for range 2 {
			got, err := io.ReadAll(sp.Reader())
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("mem %d: read %q, %v", mem, got, err)
			}
		}
		if err := sp.Close(); err != nil {
			t.Error(err)
		}
	}
}
