package lmtpgw

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/sieve"
)

// Deduplication of retries.
//
// An MTA that loses the connection after sending the body, before reading
// the replies, retries the whole transaction, though the gateway may have
// committed some copies already. So after each copy commits, the gateway
// records a marker in the shared counters (meta.Counters, living
// -lmtp.dedup-window), keyed by account, mailbox and a hash of the
// message (its Message-ID field, or nothing without one, and the SHA-256
// of the body as received, which the added fields are not part of); before
// storing a copy it looks for the marker and, when present, skips the copy
// and counts it as delivered. Any gateway pod sees the markers of every
// other.
//
// The trade-off: the marker is written after the commit, never before.
// A crash or a metadata failure between the two leaves no marker, and a
// retry then stores a second copy; writing it first would, on a crash
// before the commit, make the retry skip a copy that was never stored,
// losing mail. A duplicate is the lesser harm. The marker is per mailbox,
// not per recipient, so when Sieve files several copies and only some
// commit before a failure (answered 451), the retry stores only the
// missing ones. The same message sent again later by a different
// transaction (a resend with the same Message-ID and body) within the
// window is taken for a retry too; that is what Dovecot's duplicate
// database does as well.

// dedupHash identifies a message for the markers.
func dedupHash(m sieve.Message, bodySum [sha256.Size]byte) string {
	var msgID string
	if v := m.Header("Message-Id"); len(v) > 0 {
		msgID = strings.TrimSpace(v[0])
	}
	h := sha256.New()
	h.Write([]byte(msgID))
	h.Write([]byte{0})
	h.Write(bodySum[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// markerKey is the counter key of one stored copy.
func markerKey(acct mail.AccountID, hash string, mbox mail.MailboxID) string {
	return fmt.Sprintf("lmtp/delivered/%s/%s/%d", acct, hash, mbox)
}

// notYetDelivered returns the targets whose marker is absent.
func (g *Gateway) notYetDelivered(ctx context.Context, acct mail.AccountID, hash string, ts []target) ([]target, error) {
	if g.cfg.DedupWindow == 0 {
		return ts, nil
	}
	out := ts[:0:0]
	for _, t := range ts {
		n, err := g.deps.Meta.Counter(ctx, markerKey(acct, hash, t.mailbox))
		if err != nil {
			return nil, fmt.Errorf("read delivery marker: %w", err)
		}
		if n > 0 {
			g.logger.Info("already delivered", "account", acct, "mailbox", t.name)
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// markerTimeout bounds the marker write, which runs even when the
// delivery's deadline has passed: the copy is committed and must be
// answered 250 whatever happens to the marker.
const markerTimeout = 10 * time.Second

// markDelivered records a committed copy. A failure is logged only: the
// copy is stored, so the recipient still gets 250, and the worst outcome
// is a duplicate on a retry.
func (g *Gateway) markDelivered(ctx context.Context, acct mail.AccountID, hash string, mbox mail.MailboxID) {
	if g.cfg.DedupWindow == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markerTimeout)
	defer cancel()
	if _, err := g.deps.Meta.IncrCounter(ctx, markerKey(acct, hash, mbox), 1, g.cfg.DedupWindow); err != nil {
		g.logger.Warn("write delivery marker", "account", acct, "mailbox", mbox, "err", err)
	}
}
