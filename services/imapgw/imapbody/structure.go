package imapbody

import (
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// Placeholders for the parts of an address the header left out, as
// Dovecot sends them: a NIL host would make the address read as the start
// of a group (RFC 3501 section 7.4.2).
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// WriteEnvelope writes env as an RFC 9051 envelope, parentheses included:
// (date subject from sender reply-to to cc bcc in-reply-to message-id).
// Strings go out as the header held them (encoded words kept); 8-bit text
// becomes a literal unless e.UTF8. A nil env writes an all-NIL envelope.
func WriteEnvelope(e *wire.Encoder, env *mime.Envelope) {
	if env == nil {
		env = &mime.Envelope{}
	}
	e.Open()
	e.NString(env.Date).SP()
	e.NString(env.Subject).SP()
	writeAddresses(e, env.From)
	e.SP()
	writeAddresses(e, env.Sender)
	e.SP()
	writeAddresses(e, env.ReplyTo)
	e.SP()
	writeAddresses(e, env.To)
	e.SP()
	writeAddresses(e, env.Cc)
	e.SP()
	writeAddresses(e, env.Bcc)
	e.SP()
	e.NString(env.InReplyTo).SP()
	e.NString(env.MessageID)
	e.Close()
}

// writeAddresses writes an address list, NIL when empty. Group syntax
// (RFC 3501 section 7.4.2): a group starts with (NIL NIL "name" NIL) and
// ends with (NIL NIL NIL NIL).
func writeAddresses(e *wire.Encoder, list []mime.Address) {
	if len(list) == 0 {
		e.NIL()
		return
	}
	e.Open()
	for i := range list {
		a := &list[i]
		switch a.Kind {
		case mime.AddrGroupStart:
			e.Raw("(NIL NIL ").String(a.Mailbox).Raw(" NIL)")
		case mime.AddrGroupEnd:
			e.Raw("(NIL NIL NIL NIL)")
		default:
			mbox, host := a.Mailbox, a.Host
			if mbox == "" {
				mbox = missingMailbox
			}
			if host == "" {
				host = missingDomain
			}
			e.Open().NString(a.Name).SP().NString(a.Route).SP().String(mbox).SP().String(host).Close()
		}
	}
	e.Close()
}

// WriteBodyStructure writes the body structure of st, parentheses
// included: BODY when extended is false, BODYSTRUCTURE (with extension
// data) when true, per RFC 9051 section 7.5.2.
func WriteBodyStructure(e *wire.Encoder, st *mime.Structure, extended bool) {
	writePart(e, &st.Root, extended)
}

func writePart(e *wire.Encoder, p *mime.Part, ext bool) {
	e.Open()
	if p.IsMultipart() {
		for i := range p.Children {
			writePart(e, &p.Children[i], ext)
		}
		e.SP().String(p.Subtype)
		if ext {
			e.SP()
			writeParams(e, p.Params, false)
			writeExtCommon(e, p)
		}
		e.Close()
		return
	}
	typ, sub, params := p.Type, p.Subtype, p.Params
	switch {
	case typ == "" || sub == "" || typ == "multipart":
		// A tree the scanner did not make (it never leaves these): the
		// safest reading of an unusable type.
		typ, sub, params = "text", "plain", nil
	case typ == "message" && (sub == "rfc822" || sub == "global") && !p.IsMessage():
		// media-message requires an envelope and a body we do not have.
		typ, sub, params = "application", "octet-stream", nil
	}
	text := typ == "text"
	e.String(typ).SP().String(sub).SP()
	writeParams(e, params, text)
	enc := p.Encoding
	if enc == "" {
		enc = "7bit"
	}
	e.SP().NString(p.ID).SP().NString(p.Description).SP().String(enc).SP().Number(uint64(max(p.Size, 0)))
	switch {
	case text:
		e.SP().Number(uint64(max(p.Lines, 0)))
	case typ == "message" && p.IsMessage():
		e.SP()
		WriteEnvelope(e, p.Envelope)
		e.SP()
		writePart(e, &p.Children[0], ext)
		e.SP().Number(uint64(max(p.Lines, 0)))
	}
	if ext {
		e.SP().NString(p.MD5)
		writeExtCommon(e, p)
	}
	e.Close()
}

// writeParams writes a body-fld-param: a list of name/value strings, or NIL
// when empty; a text part without a charset gets the RFC 2045 default.
func writeParams(e *wire.Encoder, params []mime.Param, text bool) {
	charset := false
	if text {
		for _, p := range params {
			if p.Name == "charset" {
				charset = true
				break
			}
		}
	}
	if len(params) == 0 && (!text || charset) {
		e.NIL()
		return
	}
	e.Open()
	for i, p := range params {
		if i > 0 {
			e.SP()
		}
		e.String(p.Name).SP().String(p.Value)
	}
	if text && !charset {
		if len(params) > 0 {
			e.SP()
		}
		e.Raw(`"charset" "us-ascii"`)
	}
	e.Close()
}

// writeExtCommon writes the extension data shared by single and multipart
// bodies: SP disposition SP language SP location.
func writeExtCommon(e *wire.Encoder, p *mime.Part) {
	e.SP()
	if p.Disposition == "" {
		e.NIL()
	} else {
		e.Open().String(p.Disposition).SP()
		writeParams(e, p.DispParams, false)
		e.Close()
	}
	e.SP()
	if len(p.Language) == 0 {
		e.NIL()
	} else {
		e.Open()
		for i, l := range p.Language {
			if i > 0 {
				e.SP()
			}
			e.String(l)
		}
		e.Close()
	}
	e.SP().NString(p.Location)
}
