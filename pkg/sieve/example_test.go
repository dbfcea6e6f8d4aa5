package sieve_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mailstore/mailstore/pkg/sieve"
)

func Example() {
	script, err := sieve.Compile([]byte(`
require ["fileinto", "imap4flags", "subaddress", "envelope"];
if envelope :detail "to" "lists" {
	fileinto :flags "$List" "Lists";
	stop;
}
if header :contains "X-Spam-Flag" "yes" {
	setflag "\\Seen";
	fileinto "Junk";
}
`), sieve.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	raw := "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
	hdr := raw[:strings.Index(raw, "\r\n\r\n")+4]
	msg := sieve.MessageFromHeader([]byte(hdr), int64(len(raw)), func() (io.Reader, error) {
		return strings.NewReader(raw), nil
	})
	res, err := script.Execute(context.Background(), sieve.Envelope{From: "a@example.com", To: "bob+lists@example.net"}, msg)
	if err != nil {
		fmt.Println("keep in INBOX:", err)
		return
	}
	fmt.Printf("%+v\n", res)

	_, err = sieve.Compile([]byte("require \"fileinto\";\nredirect \"x@example.org\";"), sieve.Options{})
	fmt.Println(err)
	// Output:
	// {Actions:[{Mailbox:Lists Create:false Flags:[$List]}] Discarded:false}
	// line 2, column 1: redirect is not supported: this service does not send mail
}
