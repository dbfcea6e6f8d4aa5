package pop3gw

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzPOP3 feeds raw bytes to a logged-in session over a real connection.
// The gateway must not panic, must end the session when the input ends
// (releasing the lock), and must go on serving new connections.
func FuzzPOP3(f *testing.F) {
	for _, s := range []string{
		"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nQUIT\r\n",
		"DELE 1\r\nRSET\r\nLIST 1\r\nUIDL 99999999999999999999\r\n",
		"TOP 1 99999999999\r\nTOP 0 0\r\nTOP\r\nLIST -1\r\nRETR +1\r\n",
		"\r\n\n\x00\xff\r\nCAPA\r\nNOOP\r\nAUTH PLAIN\r\nSTLS\r\nUSER x\r\n",
		"RETR 2\nRETR 3\nDELE 2\nQUIT",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	acct := e.account("fuzz@example.com")
	e.deliver(acct, "Subject: 1\r\n\r\n.body\r\n")
	e.deliver(acct, "Subject: 2\n\nx")
	addr := e.gateway(func(c *Config) { c.MaxLineLength = 255 })
	f.Fuzz(func(t *testing.T, input []byte) {
		c := dialRaw(t, addr)
		c.login("fuzz@example.com")
		// Read concurrently: a large answer must not block the writes.
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, _ = io.Copy(io.Discard, c.r)
		}()
		_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, _ = c.conn.Write(input)
		_ = c.conn.(*net.TCPConn).CloseWrite()
		<-done
		// The session has ended and released the lock: a new login works.
		n := dialRaw(t, addr)
		n.login("fuzz@example.com")
		n.ok("NOOP")
		n.ok("QUIT")
		n.eof()
	})
}
