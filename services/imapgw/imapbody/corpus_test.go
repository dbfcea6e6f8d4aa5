package imapbody

import "strings"

// The test corpus. Expected sizes and sections are computed from the raw
// text with between and lines, not from the scanner's offsets.

// rfcExample is the message of the ENVELOPE and BODYSTRUCTURE examples of
// RFC 9051 section 7.5.2 (with bodies of the sizes and line counts the
// example shows).
var rfcExample = func() string {
	var b strings.Builder
	b.WriteString(crlf(`Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev2 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: MULTIPART/MIXED; BOUNDARY="b1"

--b1
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

`))
	// 23 lines, 1152 bytes.
	for i := 0; i < 22; i++ {
		b.WriteString(strings.Repeat("x", 50) + "\r\n")
	}
	b.WriteString("last..\r\n")
	b.WriteString(crlf(`
--b1
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff
Content-ID: <960723163407.20117h@cac.washington.edu>
Content-Description: Compiler diff
Content-Transfer-Encoding: BASE64

`))
	// 73 lines, 4554 bytes.
	for i := 0; i < 72; i++ {
		b.WriteString(strings.Repeat("QUFB", 15) + "\r\n")
	}
	b.WriteString(strings.Repeat("QUFB", 22) + "\r\n")
	b.WriteString(crlf("\n--b1--\n"))
	return b.String()
}()

// nested: multipart/mixed with a text part, a forwarded message holding a
// multipart/alternative, and a base64 attachment with every extension
// field.
var nested = crlf(`From: a@example.com
To: b@example.com
Subject: nested
Date: Mon, 7 Feb 1994 21:52:25 -0800
Message-ID: <n1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: text/plain; charset=utf-8

hello
--outer
Content-Type: message/rfc822
Content-Description: forwarded

From: "Inner Sender" <inner@example.org>
Subject: inner
Date: Tue, 8 Feb 1994 10:00:00 +0000
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 soft=
break
--inner
Content-Type: text/html

<p>x</p>
--inner--
--outer
Content-Type: application/octet-stream; name=blob.bin
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=blob.bin
Content-Language: en, de
Content-Location: http://example.com/blob.bin
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-ID: <blob@example.com>

AAECAwBh
YmM=
--outer
Content-Type: application/x-thing
Content-Transfer-Encoding: x-uuencode

begin 644 x
--outer--
epilogue
`)

// simple: a single text part, folded and repeated header fields, groups,
// an address without a host, no trailing line break.
var simple = crlf(`Date: Tue, 1 Jul 2003 10:52:37 +0200
From: "Joe Q. Public" <john.q.public@example.com>
Sender: <sender@example.com>
To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>
Cc: <boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>
Bcc: undisclosed-recipients:;, team: ann@t.test, bob@t.test;, localonly
Subject: Hello
  world
X-Folded: a
 b
	c
Received: first
Message-ID: <5678.21-Nov-1997@example.com>
In-Reply-To: <parent@example.com>
Received: second
 continued

Body line 1
Body line 2`)

// encoded: 8-bit and RFC 2231 values, a quoted-printable part and a
// binary part.
var encoded = crlf(`From: =?utf-8?q?J=C3=B6rg?= <j@example.com>
Subject: Grüße
Content-Type: multipart/mixed; boundary=e

--e
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable
Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.txt

Gr=C3=BC=c3=9fe   
line=20two=
=3D end
--e
Content-Type: application/octet-stream
Content-Transfer-Encoding: binary

`) + "A\x00B\xff" + crlf(`
--e--
`)
