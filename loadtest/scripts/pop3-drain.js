// POP3-drain scenario: setup seeds every user's mailbox over LMTP (SEED
// messages, each delivered to all users at once), then one VU per user
// (so no two sessions contend for a maildrop) downloads everything with
// RETR and deletes it with DELE, reseeding over LMTP when the maildrop is
// empty so the load lasts DURATION. With LEAVE_ON_SERVER=1 the sessions
// RETR without DELE, like a client that leaves mail on the server.
//
// Environment: MAIL_POP3 (comma list), MAIL_LMTP, MAIL_USERS,
// MAIL_PASSWORD (required); DURATION (30s), SEED (messages per user, 50),
// LEAVE_ON_SERVER (0).
import mail from "k6/x/mail";
import { connOptions, list, need } from "./lib/options.js";
import { check, fail } from "k6";
import exec from "k6/execution";

const pop3Addrs = list(need("MAIL_POP3"));
const lmtpAddr = need("MAIL_LMTP");
const users = list(need("MAIL_USERS"));
const password = need("MAIL_PASSWORD");
const seedN = parseInt(__ENV.SEED || "50", 10);
const leave = __ENV.LEAVE_ON_SERVER === "1";

export const options = {
  scenarios: {
    drain: { executor: "constant-vus", vus: users.length, duration: __ENV.DURATION || "30s", gracefulStop: "30s" },
  },
  setupTimeout: "120s",
  thresholds: {
    checks: ["rate>0.99"],
    mail_errors: ["count<1"],
    "mail_pop3_command_duration{command:USER}": ["p(95)<500"],
    "mail_pop3_command_duration{command:PASS}": ["p(95)<500"],
    "mail_pop3_command_duration{command:RETR}": ["p(95)<500"],
    "mail_pop3_command_duration{command:DELE}": ["p(95)<200"],
    "mail_pop3_command_duration{command:QUIT}": ["p(95)<1000"],
    mail_lmtp_delivery_duration: ["p(95)<1000"],
  },
};

function seed(to, tag) {
  for (let i = 0; i < seedN; i++) {
    const msg = [
      "From: seeder <seeder@loadtest.invalid>",
      `To: ${to.join(", ")}`,
      `Subject: pop3-drain ${tag} ${i}`,
      `Message-ID: <drain-${tag}-${i}-${Date.now()}@loadtest.invalid>`,
      "",
      "Text of message " + i + ". " + "All work and no play. ".repeat(100),
      "",
    ].join("\r\n");
    const r = mail.lmtp.deliver(lmtpAddr, "seeder@loadtest.invalid", to, msg);
    check(r, { "lmtp accepted every recipient": (x) => x.length === to.length && x.every((y) => y.code === 250) });
  }
}

export function setup() {
  seed(users, "setup");
}

export default function () {
  const vu = exec.vu.idInTest;
  const user = users[(vu - 1) % users.length];
  const p = mail.pop3.connect(pop3Addrs[(vu + exec.vu.iterationInScenario) % pop3Addrs.length], connOptions());
  let empty = false;
  try {
    p.login(user, password);
    const st = p.stat();
    empty = st.count === 0;
    for (const m of p.list()) {
      const b = p.retr(m.id);
      check(b, { "retr returned the message": (x) => x.includes("Subject: pop3-drain") });
      if (!leave) {
        p.dele(m.id);
      }
    }
    p.quit();
    if (!leave && !empty) {
      // QUIT committed the deletions: the maildrop must now be empty.
      const q = mail.pop3.connect(pop3Addrs[vu % pop3Addrs.length], connOptions());
      q.login(user, password);
      check(q.stat(), { "drained maildrop is empty": (s) => s.count === 0 });
      q.quit();
    }
  } catch (e) {
    p.close();
    fail(`pop3 ${user}: ${e}`);
  }
  if (empty) {
    seed([user], `vu${vu}-${exec.vu.iterationInScenario}`);
  }
}
