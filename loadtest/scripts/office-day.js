// Office-day scenario: a working day in miniature, three kinds of load at
// once, each with the executor that models it.
//
//   office    ramping-vus: IMAP users arrive over the first fifth of the run
//             and stay; each session logs in, waits in a short IDLE,
//             fetches what is new (SEARCH UNSEEN, FETCH), flags it
//             (\Seen \Flagged) and moves it to Archive, a few times, then
//             logs out and the next session begins.
//   delivery  constant-arrival-rate: LMTP deliveries at a fixed rate,
//             whatever the latency, to one to three random recipients.
//   pop3_N    constant-vus, one VU per POP3 account (one scenario each,
//             so no two pollers contend for a maildrop): poll, download
//             and delete everything, wait, again.
//
// The first half of MAIL_USERS read by IMAP, the second half by POP3 (with
// one user, it does both). MAIL_IMAP and MAIL_POP3 may list several
// gateways, comma-separated; sessions are spread over them round-robin.
//
// Environment: MAIL_IMAP, MAIL_POP3, MAIL_LMTP, MAIL_USERS, MAIL_PASSWORD
// (required); DURATION (30s), VUS (IMAP sessions, default twice the IMAP users
// count), RATE (deliveries per second, 5), IDLE_MS (1000), CYCLES (IDLE
// rounds per session, 5), POLL_S (seconds between POP3 polls, 2).
import mail from "k6/x/mail";
import { connOptions, list, need } from "./lib/options.js";
import { check, fail, sleep } from "k6";
import exec from "k6/execution";

// seconds parses a k6 duration ("90s", "2m", "1h30m", "500ms").
function seconds(d) {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  while ((m = re.exec(d)) !== null) {
    total += parseFloat(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
  }
  if (total === 0) {
    throw new Error(`bad duration ${d}`);
  }
  return total;
}

const imapAddrs = list(need("MAIL_IMAP"));
const pop3Addrs = list(need("MAIL_POP3"));
const lmtpAddr = need("MAIL_LMTP");
const users = list(need("MAIL_USERS"));
const password = need("MAIL_PASSWORD");
const duration = __ENV.DURATION || "30s";
const half = Math.max(1, Math.ceil(users.length / 2));
const imapUsers = users.slice(0, half);
const pop3Users = users.length > 1 ? users.slice(half) : users;
const vus = parseInt(__ENV.VUS || String(2 * imapUsers.length), 10);
const rate = parseInt(__ENV.RATE || "5", 10);
const idleMs = parseInt(__ENV.IDLE_MS || "1000", 10);
const cycles = parseInt(__ENV.CYCLES || "5", 10);
const pollS = parseFloat(__ENV.POLL_S || "2");

const total = seconds(duration);
const ramp = Math.max(1, Math.round(total / 5));

const scenarios = {
  office: {
    executor: "ramping-vus",
    exec: "office",
    startVUs: 0,
    stages: [
      { duration: `${ramp}s`, target: vus },
      { duration: `${Math.max(1, total - ramp)}s`, target: vus },
    ],
    gracefulRampDown: "10s",
    gracefulStop: "10s",
  },
  delivery: {
    executor: "constant-arrival-rate",
    exec: "delivery",
    rate: rate,
    timeUnit: "1s",
    duration: duration,
    preAllocatedVUs: Math.max(2, rate),
    maxVUs: Math.max(4, rate * 4),
    gracefulStop: "10s",
  },
};
pop3Users.forEach((u, i) => {
  scenarios[`pop3_${i + 1}`] = {
    executor: "constant-vus",
    exec: "poller",
    vus: 1,
    duration: duration,
    gracefulStop: "10s",
    env: { POP3_USER: u, POP3_ADDR: pop3Addrs[i % pop3Addrs.length] },
  };
});

export const options = {
  scenarios: scenarios,
  thresholds: {
    checks: ["rate>0.99"],
    mail_errors: ["count<1"],
    "mail_imap_command_duration{command:LOGIN}": ["p(95)<500"],
    "mail_imap_command_duration{command:SELECT}": ["p(95)<500"],
    "mail_imap_command_duration{command:UID SEARCH}": ["p(95)<500"],
    "mail_imap_command_duration{command:UID FETCH}": ["p(95)<500"],
    "mail_imap_command_duration{command:UID STORE}": ["p(95)<500"],
    "mail_imap_command_duration{command:UID MOVE}": ["p(95)<1000"],
    "mail_pop3_command_duration{command:RETR}": ["p(95)<500"],
    "mail_pop3_command_duration{command:DELE}": ["p(95)<500"],
    mail_lmtp_delivery_duration: ["p(95)<1000"],
  },
};

function message(to, id) {
  return [
    `From: Colleague <colleague@loadtest.invalid>`,
    `To: ${to.join(", ")}`,
    `Subject: office-day ${id}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <office-${id}@loadtest.invalid>`,
    `Content-Type: text/plain; charset=utf-8`,
    ``,
    `Minutes of meeting ${id}.`,
    `${"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(20)}`,
    ``,
  ].join("\r\n");
}

export function delivery() {
  const n = 1 + Math.floor(Math.random() * Math.min(3, users.length));
  const to = [];
  while (to.length < n) {
    const u = users[Math.floor(Math.random() * users.length)];
    if (!to.includes(u)) {
      to.push(u);
    }
  }
  const id = `${exec.scenario.iterationInTest}-${Date.now()}`;
  const replies = mail.lmtp.deliver(lmtpAddr, "colleague@loadtest.invalid", to, message(to, id));
  check(replies, { "lmtp accepted every recipient": (r) => r.length === to.length && r.every((x) => x.code === 250) });
}

export function office() {
  const vu = exec.vu.idInTest;
  const user = imapUsers[vu % imapUsers.length];
  const c = mail.imap.connect(imapAddrs[(vu + exec.vu.iterationInScenario) % imapAddrs.length], connOptions());
  try {
    c.login(user, password);
    if (!c.list("", "Archive").some((m) => m.name === "Archive")) {
      try {
        c.create("Archive");
      } catch (e) {
        // Another session of the same user created it first.
      }
    }
    c.select("INBOX");
    for (let i = 0; i < cycles; i++) {
      const ev = c.idle(idleMs);
      check(ev, { "idle answered": (e) => e.event !== "" });
      const uids = c.search({ notFlag: "\\Seen" }, { uid: true });
      if (uids.length === 0) {
        continue;
      }
      const set = uids.join(",");
      const msgs = c.fetch(set, ["UID", "FLAGS", "ENVELOPE", "BODY.PEEK[TEXT]<0.512>"], { uid: true });
      // Another session of the same user may have moved some already.
      check(msgs, { "fetched new mail": (m) => m.length <= uids.length && m.every((x) => x.uid > 0) });
      if (msgs.length === 0) {
        continue;
      }
      const got = msgs.map((m) => m.uid).join(",");
      c.store(got, "+FLAGS.SILENT", ["\\Seen", "\\Flagged"], { uid: true });
      c.move(got, "Archive", { uid: true });
    }
    c.logout();
  } catch (e) {
    c.close();
    fail(`imap ${user}: ${e}`);
  }
}

export function poller() {
  const user = __ENV.POP3_USER;
  const p = mail.pop3.connect(__ENV.POP3_ADDR, connOptions());
  try {
    p.login(user, password);
    const st = p.stat();
    const uidl = p.uidl();
    check(uidl, { "uidl matches stat": (u) => u.length === st.count });
    for (const m of p.list()) {
      const body = p.retr(m.id);
      check(body, { "retr returned the message": (b) => b.includes("Subject: office-day") });
      p.dele(m.id);
    }
    p.quit();
  } catch (e) {
    p.close();
    fail(`pop3 ${user}: ${e}`);
  }
  sleep(pollS);
}
