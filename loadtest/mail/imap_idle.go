package mail

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// IdleEvent is what ended an IDLE: event is "exists" (count is the new
// message count), "expunge" (seq), "fetch" (seq, flags) or "timeout".
type IdleEvent struct {
	Event    string   `js:"event"`
	Count    uint32   `js:"count"`
	Seq      uint32   `js:"seq"`
	Flags    []string `js:"flags"`
	WaitedMs int64    `js:"waitedMs"`
}

// unilateral forwards untagged updates to the events channel. The handler
// runs on the client's reader, so it never blocks: when the script does
// not IDLE, updates beyond the buffer are dropped (they are stale by the
// next IDLE anyway).
func (c *IMAPClient) unilateral() *imapclient.UnilateralDataHandler {
	send := func(ev IdleEvent) {
		select {
		case c.events <- ev:
		default:
		}
	}
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				send(IdleEvent{Event: "exists", Count: *d.NumMessages})
			}
		},
		Expunge: func(seq uint32) { send(IdleEvent{Event: "expunge", Seq: seq}) },
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err != nil {
				return
			}
			send(IdleEvent{Event: "fetch", Seq: buf.SeqNum, Flags: flagStrings(buf.Flags)})
		},
	}
}

// Idle sends IDLE and returns at the first update the server pushes, or
// after timeoutMs with event "timeout" (not an error). Updates that came
// before the call are discarded, so the answer is always news.
func (c *IMAPClient) Idle(timeoutMs int64) (*IdleEvent, error) {
	if timeoutMs <= 0 {
		return nil, fmt.Errorf("imap IDLE: timeout must be positive, got %d ms", timeoutMs)
	}
	wait := time.Duration(timeoutMs) * time.Millisecond
	for drained := false; !drained; {
		select {
		case <-c.events:
		default:
			drained = true
		}
	}
	var ev IdleEvent
	start := time.Now()
	err := c.do("IDLE", func() error {
		c.s.deadline(wait + c.s.timeout)
		cmd, err := c.c.Idle()
		if err != nil {
			return err
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case ev = <-c.events:
		case <-timer.C:
			ev.Event = "timeout"
		case <-c.rec.vu.Context().Done():
			ev.Event = "timeout"
		case <-c.c.Closed():
		}
		ev.WaitedMs = time.Since(start).Milliseconds()
		if err := cmd.Close(); err != nil {
			return err
		}
		return cmd.Wait()
	})
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
