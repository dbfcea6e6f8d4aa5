package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstore/mailstore/internal/testenv"
)

// startIMAP starts an IMAP gateway process against a stack.
func startIMAP(t *testing.T, name string, st *stack) string {
	t.Helper()
	addr := freeAddr(t)
	startProc(t, name, nil, "-target=imap", "-imap.listen-address="+addr,
		"-metadata.address="+st.metaAddrs[0], "-blob.address="+st.blobAddr)
	return addr
}

// TestIMAPAcrossGateways: two IMAP gateway processes over one metadata
// service on Redis and a blob service on S3. A client on one gateway
// appends while another IDLEs on the other and sees EXISTS; a STORE and
// EXPUNGE on one reach the other as FETCH and EXPUNGE.
func TestIMAPAcrossGateways(t *testing.T) {
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.VersityGW))
	mailctl(t, st.metaAddrs[0], "secret\n", false, "account", "add", "imap@example.com", "--password-stdin")
	gw1 := startIMAP(t, "imap-1", st)
	gw2 := startIMAP(t, "imap-2", st)

	updates := make(chan string, 16)
	watcher, err := imapclient.DialInsecure(gw2, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					updates <- fmt.Sprintf("EXISTS %d", *d.NumMessages)
				}
			},
			Expunge: func(seq uint32) { updates <- fmt.Sprintf("EXPUNGE %d", seq) },
			Fetch: func(m *imapclient.FetchMessageData) {
				buf, _ := m.Collect()
				if buf != nil {
					updates <- fmt.Sprintf("FLAGS %d %v", buf.SeqNum, buf.Flags)
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if err := watcher.Login("imap@example.com", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := watcher.Idle()
	if err != nil {
		t.Fatal(err)
	}

	writer, err := imapclient.DialInsecure(gw1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if err := writer.Login("imap@example.com", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	body := "From: a@example.org\r\nSubject: across pods\r\n\r\nhello\r\n"
	ap := writer.Append("INBOX", int64(len(body)), nil)
	ap.Write([]byte(body))
	ap.Close()
	if _, err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
	expect(t, updates, "EXISTS 1")

	if _, err := writer.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := writer.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, updates, `FLAGS 1 [\Deleted \Recent]`)
	if err := writer.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, updates, "EXPUNGE 1")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}

	// Bytes out equal bytes in, through S3, with Python's imaplib.
	py := `
import imaplib, sys
body = b"Subject: py\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n.\r\nend"
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login("imap@example.com", "secret")
typ, data = M.append("Archive", "(\\Seen)", None, body)
assert typ == "OK", (typ, data)
typ, data = M.select("Archive")
assert typ == "OK" and data[0] == b"1", (typ, data)
typ, data = M.fetch("1", "(FLAGS BODY.PEEK[])")
assert typ == "OK", (typ, data)
assert data[0][1] == body, data
assert b"\\Seen" in data[0][0], data
typ, data = M.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
assert typ == "OK", (typ, data)
typ, data = M.list()
assert typ == "OK" and any(b'"Archive"' in l or b" Archive" in l for l in data), data
M.logout()
print("ok")
`
	host, port, _ := strings.Cut(gw1, ":")
	out, err := exec.Command("python3", "-c", py, host, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}

	// The services timed their Redis and S3 calls.
	if m := scrape(t, st.metas[0]); !strings.Contains(m, `mailstore_redis_command_duration_seconds_count{command="evalsha"}`) {
		t.Errorf("metadata /metrics lacks the Redis script latency:\n%s", m)
	}
	if m := scrape(t, st.blob); !strings.Contains(m, `mailstore_s3_request_duration_seconds_count{code="200",method="PUT"}`) {
		t.Errorf("blob /metrics lacks the S3 PUT latency:\n%s", m)
	}
}

func expect(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("got update %q, want %q", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no update %q within 20s", want)
	}
}
