// Login-storm scenario: IMAP connect, LOGIN, LOGOUT as fast as the VUs can,
// spread over the IMAP gateways and the users: the cost of a session's
// setup (TCP, greeting, password check, account lookup) with nothing else.
//
// Environment: MAIL_IMAP (comma list), MAIL_USERS, MAIL_PASSWORD
// (required); DURATION (30s), VUS (20).
import mail from "k6/x/mail";
import { connOptions, list, need } from "./lib/options.js";
import { check, fail } from "k6";
import exec from "k6/execution";

const imapAddrs = list(need("MAIL_IMAP"));
const users = list(need("MAIL_USERS"));
const password = need("MAIL_PASSWORD");

export const options = {
  scenarios: {
    storm: { executor: "constant-vus", vus: parseInt(__ENV.VUS || "20", 10), duration: __ENV.DURATION || "30s", gracefulStop: "5s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    mail_errors: ["count<1"],
    // Each LOGIN verifies an argon2id hash (19 MiB, 2 passes): a few
    // hundredths of a second of one core. With VUS=20 on a 2-core machine the
    // logins queue for CPU; these bounds hold there, and a cluster with
    // more metadata cores meets them with room to spare.
    "mail_imap_command_duration{command:LOGIN}": ["p(95)<1500", "p(99)<2500"],
    "mail_imap_command_duration{command:LOGOUT}": ["p(95)<100"],
    iteration_duration: ["p(95)<1600"],
    iterations: ["rate>10"],
  },
};

export default function () {
  const i = exec.scenario.iterationInTest;
  const user = users[i % users.length];
  const c = mail.imap.connect(imapAddrs[i % imapAddrs.length], connOptions({ timeout: "10s" }));
  try {
    c.login(user, password);
    c.logout();
    check(true, { "logged in and out": (x) => x });
  } catch (e) {
    c.close();
    fail(`imap ${user}: ${e}`);
  }
}
