// Smoke scenario for mailstore over IMAP, POP3 and LMTP with k6/x/mail.
//
// Each VU owns one account (VU n uses MAIL_USERS[(n-1) % count], so with
// VUS <= the number of users no two POP3 sessions contend for a maildrop)
// and loops: deliver one message by LMTP, read and flag it over IMAP,
// append one more, wait briefly in IDLE, then download and delete the two
// oldest by POP3, which keeps the mailbox small however long it runs.
//
// Environment (all required but DURATION and VUS):
//   MAIL_IMAP, MAIL_POP3, MAIL_LMTP  host:port of each gateway
//   MAIL_USERS                       comma-separated logins (also the LMTP recipients)
//   MAIL_PASSWORD                    the password of every user
//   DURATION                         how long to run, e.g. "30s" (default 5s)
//   VUS                              virtual users (default: one per user)
//
//   k6="$(scripts/loadtest-build.sh)"
//   "$k6" run --no-usage-report -e MAIL_IMAP=127.0.0.1:1143 ... loadtest/scripts/smoke.js
import mail from "k6/x/mail";
import { need } from "./lib/options.js";
import { check, fail } from "k6";
import exec from "k6/execution";

const imapAddr = need("MAIL_IMAP");
const pop3Addr = need("MAIL_POP3");
const lmtpAddr = need("MAIL_LMTP");
const users = need("MAIL_USERS").split(",").map((u) => u.trim()).filter((u) => u);
const password = need("MAIL_PASSWORD");
const duration = __ENV.DURATION || "5s";
const vus = parseInt(__ENV.VUS || String(users.length), 10);

export const options = {
  scenarios: {
    mail: { executor: "constant-vus", vus: vus, duration: duration, gracefulStop: "10s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    mail_errors: ["count<1"],
    mail_sessions: ["count>0"],
    "mail_imap_command_duration{command:LOGIN}": ["p(95)<2000"],
    "mail_imap_command_duration{command:FETCH}": ["p(95)<2000"],
    mail_pop3_command_duration: ["p(95)<2000"],
    mail_lmtp_delivery_duration: ["p(95)<2000"],
  },
};

function message(user, n) {
  return [
    `From: k6 <k6@loadtest.invalid>`,
    `To: ${user}`,
    `Subject: smoke ${exec.vu.idInTest}-${n}`,
    `Message-ID: <smoke-${exec.vu.idInTest}-${n}-${Date.now()}@loadtest.invalid>`,
    ``,
    `hello from iteration ${n}`,
    ``,
  ].join("\r\n");
}

export default function () {
  const user = users[(exec.vu.idInTest - 1) % users.length];
  const n = exec.vu.iterationInScenario;

  const replies = mail.lmtp.deliver(lmtpAddr, "k6@loadtest.invalid", [user], message(user, n));
  check(replies, { "lmtp accepted": (r) => r.length === 1 && r[0].code === 250 });

  const imap = mail.imap.connect(imapAddr, { tls: false });
  try {
    imap.login(user, password);
    const inbox = imap.select("INBOX");
    check(inbox, { "inbox not empty": (s) => s.messages > 0 });
    const msgs = imap.fetch(`${inbox.messages}`, ["UID", "FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]);
    check(msgs, { "fetched the newest": (m) => m.length === 1 && m[0].uid > 0 });
    imap.store(`${inbox.messages}`, "+FLAGS.SILENT", ["\\Seen"]);
    const appended = imap.append("INBOX", message(user, `${n}-append`), ["\\Flagged"]);
    check(appended, { "append gave a uid": (a) => a.uid > 0 });
    const ev = imap.idle(200);
    check(ev, { "idle returned": (e) => e.event !== "" });
    imap.logout();
  } catch (e) {
    imap.close();
    fail(`imap: ${e}`);
  }

  const pop = mail.pop3.connect(pop3Addr);
  try {
    pop.login(user, password);
    const st = pop.stat();
    check(st, { "maildrop has mail": (s) => s.count >= 2 });
    const uidl = pop.uidl();
    check(uidl, { "uidl lists every message": (u) => u.length === st.count });
    const body = pop.retr(1);
    check(body, { "retr returned a message": (b) => b.includes("Subject: smoke") });
    pop.dele(1);
    if (st.count > 1) {
      pop.dele(2);
    }
    pop.quit();
  } catch (e) {
    pop.close();
    fail(`pop3: ${e}`);
  }
}
