package lmtpgw

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
)

// FuzzLMTP feeds raw bytes to a session over a real connection. The
// gateway must not panic, must end the session when the input ends, and
// must go on serving new connections.
func FuzzLMTP(f *testing.F) {
	for _, s := range []string{
		"LHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<fuzz@example.com>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n..\r\n.\r\nQUIT\r\n",
		"LHLO x\r\nMAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<fuzz+d@example.com>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n",
		"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<fuzz@example.com>\r\nRSET\r\nDATA\r\nBDAT 99999999999\r\n",
		"LHLO x\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nRCPT TO:<\"q uoted\"@example.com>\r\nRCPT TO:<@route:fuzz@example.com>\r\n",
		"\r\n\n\x00\xff\r\nEHLO x\r\nHELO\r\nLHLO\r\nNOOP\r\nVRFY x\r\nAUTH PLAIN\r\nSTARTTLS\r\nBDAT\r\nBDAT x LAST\r\n",
		"LHLO x\nMAIL FROM:<a@b>\nRCPT TO:<fuzz@example.com>\nDATA\nno end",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	acct := e.account("fuzz@example.com", meta.Quota{})
	e.setSieve(acct, `require ["fileinto", "mailbox", "envelope", "subaddress"]; if envelope :detail "to" "d" { fileinto :create "D"; }`)
	addr := e.gateway(func(c *Config) { c.MaxRecipients = 3; c.IdleTimeout = 10 * time.Second })
	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Read concurrently: replies must not block the writes.
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.Copy(io.Discard, c)
		}()
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, _ = c.Write(input)
		_ = c.(*net.TCPConn).CloseWrite()
		<-done
		// The gateway still serves.
		n := dial(t, "tcp", addr)
		n.expect("250", "LHLO check")
		n.expect("250", "NOOP")
		n.expect("221", "QUIT")
	})
}
