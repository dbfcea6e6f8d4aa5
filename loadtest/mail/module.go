// Package mail is the k6 extension k6/x/mail: IMAP, POP3 and LMTP clients
// for load tests of mailstore, which k6 cannot speak by itself.
//
// Every call is synchronous and throws a JavaScript error when it fails,
// so a script reads like a session transcript:
//
//	import mail from "k6/x/mail";
//	const c = mail.imap.connect("127.0.0.1:1143", { tls: false });
//	c.login(user, pass);
//	c.select("INBOX");
//	c.fetch("1:*", ["UID", "FLAGS", "BODY.PEEK[]"]);
//	c.logout();
//
// Each command reports its duration (mail_imap_command_duration,
// mail_pop3_command_duration, mail_lmtp_delivery_duration, tagged with the
// command and its result), the bytes on the wire (mail_bytes_sent,
// mail_bytes_received), failures by kind (mail_errors: connect, protocol,
// timeout, auth) and opened sessions (mail_sessions), so thresholds can be
// set on any of them.
package mail

import (
	"go.k6.io/k6/js/modules"
)

func init() {
	modules.Register("k6/x/mail", new(RootModule))
}

// RootModule is the global module object; k6 makes one ModuleInstance per
// VU from it.
type RootModule struct{}

// ModuleInstance is the extension as one VU sees it.
type ModuleInstance struct {
	vu      modules.VU
	metrics *mailMetrics
	imap    *IMAP
	pop3    *POP3
	lmtp    *LMTP
}

var (
	_ modules.Module   = (*RootModule)(nil)
	_ modules.Instance = (*ModuleInstance)(nil)
)

// NewModuleInstance registers the metrics (the registry returns the same
// metric to every VU) and builds the per-VU protocol entry points.
func (*RootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	m, err := registerMetrics(vu.InitEnv().Registry)
	if err != nil {
		panic(err) // a metric name clash is a broken build, not a run-time error
	}
	rec := &recorder{vu: vu, m: m}
	return &ModuleInstance{
		vu:      vu,
		metrics: m,
		imap:    &IMAP{rec: rec},
		pop3:    &POP3{rec: rec},
		lmtp:    &LMTP{rec: rec},
	}
}

// Exports makes `import mail from "k6/x/mail"` and
// `import { imap, pop3, lmtp } from "k6/x/mail"` both work.
func (mi *ModuleInstance) Exports() modules.Exports {
	named := map[string]any{"imap": mi.imap, "pop3": mi.pop3, "lmtp": mi.lmtp}
	return modules.Exports{Default: named, Named: named}
}
