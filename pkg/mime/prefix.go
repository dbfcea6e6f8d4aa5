package mime

// WithPrefix returns the structure of the message that st describes with
// n bytes of complete header fields put in front of it (each ending with a
// line break), as a delivery agent adds Return-Path, Delivered-To and
// Received. It lets one parse serve every recipient of a delivery whose
// added fields differ per recipient.
//
// The added bytes join the top-level header: the root keeps HeaderOffset
// 0, every other offset moves by n, and HeaderSize and Size grow by n. The
// envelope and the MIME tree are unchanged, since the added fields are
// neither envelope nor MIME fields. The result equals a scan of the
// prefixed message except when the message starts with a folded
// continuation line, which a rescan would fold into the last added field.
// st is not modified; the result shares no Part with it.
func (st *Structure) WithPrefix(n int64) *Structure {
	out := *st
	out.Root = shiftPart(st.Root, n)
	out.Root.HeaderOffset = st.Root.HeaderOffset // the prefix is part of the root header
	out.HeaderSize += n
	out.Size += n
	return &out
}

func shiftPart(p Part, n int64) Part {
	p.HeaderOffset += n
	p.BodyOffset += n
	p.End += n
	if len(p.Children) > 0 {
		kids := make([]Part, len(p.Children))
		for i, c := range p.Children {
			kids[i] = shiftPart(c, n)
		}
		p.Children = kids
	}
	return p
}
