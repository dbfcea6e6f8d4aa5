package redismeta

import (
	"context"
	"fmt"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// MarkRetrieved sets the first-retrieval marks (mb:<M>:retr) in one
// script: HSETNX for every existing UID in uids, so a mark once set keeps
// its time. No MODSEQ, no event.
func (s *Store) MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error {
	if !validAccountID(acct) {
		return fmt.Errorf("mark retrieved in mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	ms := at.UnixMilli()
	if ms <= 0 {
		return fmt.Errorf("mark retrieved in mailbox %d: %w: time %v not after the epoch", mbox, meta.ErrInvalidArgument, at)
	}
	if err := scriptMarkRetrieved.Run(ctx, s.sc, []string{s.k.base(acct)}, mbArg(mbox), rangesArg(uids), ms).Err(); err != nil {
		return wrap(err, "mark retrieved in mailbox %d", mbox)
	}
	return nil
}
