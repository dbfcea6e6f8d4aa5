package sieve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets for text parts
	"github.com/emersion/go-message/textproto"
)

type bodyTransform int

const (
	bodyText bodyTransform = iota
	bodyRaw
	bodyContent
)

// Bounds on work the body test does beyond MaxBodyBytes.
const (
	maxSkipHeaderBytes = 8 << 20 // header bytes skipped to reach the body
	maxMIMEDepth       = 16      // nesting of multipart and message/rfc822
	decodeExpansion    = 4       // a decoded part may grow (charsets) up to this factor
)

// bodyTest is RFC 5173's body test over the first MaxBodyBytes of the
// body. A truncated MIME structure is used as far as it goes.
type bodyTest struct {
	transform bodyTransform
	types     []string // :content, lowercased
	m         *matcher
}

type bodyPart struct {
	mediaType string // "type/subtype", lowercased
	text      string // transfer-decoded; text/* also converted to UTF-8
}

// bodyData is the body as read once per run.
type bodyData struct {
	raw    []byte
	parsed bool
	parts  []bodyPart
}

func (t bodyTest) eval(ctx context.Context, r *run) (bool, error) {
	b, err := r.readBody()
	if err != nil {
		return false, err
	}
	if t.transform == bodyRaw {
		return t.m.match(ctx, string(b.raw))
	}
	if !b.parsed {
		b.parts = parseParts(r.msg, b.raw, r.script.opts.MaxBodyBytes*decodeExpansion)
		b.parsed = true
	}
	for _, p := range b.parts {
		if !t.wants(p.mediaType) {
			continue
		}
		text := p.text
		if t.transform == bodyText && (p.mediaType == "text/html" || p.mediaType == "application/xhtml+xml") {
			text = htmlToText(text)
		}
		if ok, err := t.m.match(ctx, text); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// wants reports whether a leaf part of mediaType is examined.
func (t bodyTest) wants(mediaType string) bool {
	if t.transform == bodyText {
		return strings.HasPrefix(mediaType, "text/") || mediaType == "application/xhtml+xml"
	}
	typ, _, _ := strings.Cut(mediaType, "/")
	for _, want := range t.types {
		if want == "" || want == mediaType || (!strings.Contains(want, "/") && want == typ) {
			return true
		}
	}
	return false
}

// readBody reads the body once: it skips the header block of the raw
// message and keeps at most MaxBodyBytes of what follows.
func (r *run) readBody() (*bodyData, error) {
	if r.body != nil {
		return r.body, nil
	}
	rd, err := r.msg.Body()
	if err != nil {
		return nil, fmt.Errorf("open message body: %w", err)
	}
	br := bufio.NewReader(rd)
	skipped, lineStart := 0, true
	for {
		line, err := br.ReadSlice('\n')
		skipped += len(line)
		if lineStart && (string(line) == "\r\n" || string(line) == "\n") {
			break
		}
		if err == io.EOF {
			r.body = &bodyData{}
			return r.body, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read message header: %w", err)
		}
		lineStart = err == nil
		if skipped > maxSkipHeaderBytes {
			r.body = &bodyData{}
			return r.body, nil
		}
	}
	raw, err := io.ReadAll(io.LimitReader(br, r.script.opts.MaxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	r.body = &bodyData{raw: raw}
	return r.body, nil
}

// parseParts returns the leaf parts of the message, descending into
// multipart and message/rfc822 parts. Parse errors (a body cut at
// MaxBodyBytes, a bad boundary) end the walk with what was found so far.
func parseParts(msg Message, raw []byte, maxDecoded int64) []bodyPart {
	var h textproto.Header
	for _, k := range []string{"Content-Type", "Content-Transfer-Encoding"} {
		for _, v := range msg.Header(k) {
			h.Add(k, v)
		}
	}
	ent, _ := message.New(message.Header{Header: h}, bytes.NewReader(raw))
	var parts []bodyPart
	walkParts(ent, 0, maxDecoded, &parts)
	return parts
}

func walkParts(ent *message.Entity, depth int, maxDecoded int64, parts *[]bodyPart) {
	if depth > maxMIMEDepth {
		return
	}
	mediaType, _, err := ent.Header.ContentType()
	if err != nil || mediaType == "" {
		mediaType = "text/plain"
	}
	mediaType = strings.ToLower(mediaType)
	if mr := ent.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil && p == nil {
				return
			}
			walkParts(p, depth+1, maxDecoded, parts)
		}
	}
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		inner, err := message.Read(ent.Body)
		if inner != nil && (err == nil || message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
			walkParts(inner, depth+1, maxDecoded, parts)
		}
		return
	}
	text, _ := io.ReadAll(io.LimitReader(ent.Body, maxDecoded))
	*parts = append(*parts, bodyPart{mediaType: mediaType, text: string(text)})
}

// htmlToText is the crude conversion :text may apply to HTML (RFC 5173
// section 5.2): tags dropped, entities decoded, white space squeezed.
func htmlToText(s string) string {
	var b strings.Builder
	inTag := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<':
			inTag = true
			b.WriteByte(' ')
		case c == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteByte(c)
		}
	}
	return strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
}
