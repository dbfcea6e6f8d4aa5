// Shared-account scenario: many sessions on ONE account, spread over every
// IMAP gateway, while a sender delivers numbered messages to it over LMTP.
// It tests that changes reach every session whatever gateway and metadata
// process it goes through: after each IDLE (or NOOP, every other round) a
// reader searches for the run's messages, reads the numbers of the new
// ones, and checks that
//   - "reader sees every delivered message": the numbers it has seen are
//     exactly 0..max (the sender delivers in order, one at a time, so once
//     message max is visible every earlier one must be);
//   - "numbered subject is searchable": SEARCH for the newest number's exact
//     subject finds one message.
// teardown checks on every gateway that the run's messages are contiguous
// and as many as the sender got accepted (shared_delivered counts those).
//
// Environment: MAIL_IMAP (comma list; sessions round-robin over it),
// MAIL_LMTP, MAIL_USERS (the first is the shared account), MAIL_PASSWORD
// (required); DURATION (30s), VUS (readers, 100), RAMP_S (the readers'
// first logins spread over this many seconds, as users arrive, 10), RATE
// (deliveries per second, 2), IDLE_MS (1000), CYCLES (rounds per session,
// 10).
import mail from "k6/x/mail";
import { connOptions, list, need } from "./lib/options.js";
import { check, fail, sleep } from "k6";
import exec from "k6/execution";
import { Counter, Trend } from "k6/metrics";

const imapAddrs = list(need("MAIL_IMAP"));
const lmtpAddr = need("MAIL_LMTP");
const user = list(need("MAIL_USERS"))[0];
const password = need("MAIL_PASSWORD");
const duration = __ENV.DURATION || "30s";
const vus = parseInt(__ENV.VUS || "100", 10);
const rampS = parseFloat(__ENV.RAMP_S || "10");
const rate = parseInt(__ENV.RATE || "2", 10);
const idleMs = parseInt(__ENV.IDLE_MS || "1000", 10);
const cycles = parseInt(__ENV.CYCLES || "10", 10);

const delivered = new Counter("shared_delivered");
const seenLag = new Trend("shared_seen_behind", false); // newest seen vs. newest searched, in messages

export const options = {
  scenarios: {
    // One VU at a time, so message n is accepted before n+1 is sent.
    sender: {
      executor: "constant-arrival-rate",
      exec: "sender",
      rate: rate,
      timeUnit: "1s",
      duration: duration,
      preAllocatedVUs: 1,
      maxVUs: 1,
      gracefulStop: "10s",
    },
    readers: {
      executor: "constant-vus",
      exec: "reader",
      vus: vus,
      duration: duration,
      gracefulStop: "15s",
    },
  },
  setupTimeout: "30s",
  teardownTimeout: "60s",
  thresholds: {
    checks: ["rate>0.999"],
    "checks{check:reader sees every delivered message}": ["rate==1"],
    "checks{check:every gateway holds every delivered message}": ["rate==1"],
    mail_errors: ["count<1"],
    shared_delivered: ["count>0"],
    // 100 sessions log in at once at the start: each LOGIN verifies an
    // argon2id hash, which is meant to cost CPU (login-storm measures it).
    "mail_imap_command_duration{command:LOGIN}": ["p(95)<1500"],
    "mail_imap_command_duration{command:UID SEARCH}": ["p(95)<500"],
    "mail_imap_command_duration{command:UID FETCH}": ["p(95)<500"],
    "mail_imap_command_duration{command:NOOP}": ["p(95)<300"],
    mail_lmtp_delivery_duration: ["p(95)<1000"],
  },
};

// setup names the run, so that the messages of earlier runs on the same
// account do not count.
export function setup() {
  return { run: `r${Date.now().toString(36)}` };
}

// subject of message n: "<n>" never occurs inside another number's.
function subject(run, n) {
  return `shared ${run} <${n}>`;
}

export function sender(data) {
  const n = exec.scenario.iterationInTest;
  const msg = [
    `From: sender <sender@loadtest.invalid>`,
    `To: ${user}`,
    `Subject: ${subject(data.run, n)}`,
    `Message-ID: <shared-${data.run}-${n}@loadtest.invalid>`,
    ``,
    `message ${n}`,
    ``,
  ].join("\r\n");
  const r = mail.lmtp.deliver(lmtpAddr, "sender@loadtest.invalid", [user], msg);
  if (check(r, { "lmtp accepted": (x) => x.length === 1 && x[0].code === 250 })) {
    delivered.add(1);
  }
}

// numbers returns the numbers in the subjects of the given messages.
function numbers(msgs, run) {
  const re = new RegExp(`^shared ${run} <(\\d+)>$`);
  const out = [];
  for (const m of msgs) {
    const s = m.envelope && m.envelope.subject;
    const x = s && re.exec(s);
    if (x) {
      out.push(parseInt(x[1], 10));
    }
  }
  return out;
}

export function reader(data) {
  const vu = exec.vu.idInTest;
  if (exec.vu.iterationInScenario === 0) {
    sleep(((vu % vus) * rampS) / vus);
  }
  const addr = imapAddrs[(vu + exec.vu.iterationInScenario) % imapAddrs.length];
  const c = mail.imap.connect(addr, connOptions());
  try {
    c.login(user, password);
    c.select("INBOX");
    const seen = new Set();
    let lastUid = 0;
    let max = -1;
    for (let i = 0; i < cycles; i++) {
      if (i % 2 === 0) {
        c.idle(idleMs);
      } else {
        sleep(idleMs / 1000);
        c.noop();
      }
      const uids = c.search({ header: { Subject: `shared ${data.run} <` } }, { uid: true });
      const fresh = uids.filter((u) => u > lastUid);
      if (fresh.length === 0) {
        continue;
      }
      lastUid = Math.max(...fresh);
      for (const n of numbers(c.fetch(fresh.join(","), ["UID", "ENVELOPE"], { uid: true }), data.run)) {
        seen.add(n);
        max = Math.max(max, n);
      }
      check(seen, { "reader sees every delivered message": (s) => s.size === max + 1 });
      const hit = c.search({ header: { Subject: subject(data.run, max) } }, { uid: true });
      check(hit, { "numbered subject is searchable": (h) => h.length === 1 });
    }
    c.logout();
  } catch (e) {
    c.close();
    fail(`imap ${addr}: ${e}`);
  }
}

// teardown: every gateway holds the same contiguous run of messages.
export function teardown(data) {
  for (const addr of imapAddrs) {
    const c = mail.imap.connect(addr, connOptions());
    try {
      c.login(user, password);
      c.examine("INBOX");
      const uids = c.search({ header: { Subject: `shared ${data.run} <` } }, { uid: true });
      const ns = uids.length === 0 ? [] : numbers(c.fetch(uids.join(","), ["UID", "ENVELOPE"], { uid: true }), data.run);
      const max = ns.length === 0 ? -1 : Math.max(...ns);
      console.log(`${addr}: ${ns.length} messages of run ${data.run}, newest <${max}>`);
      check(ns, {
        "every gateway holds every delivered message": (x) => new Set(x).size === x.length && x.length === max + 1,
      });
      c.logout();
    } catch (e) {
      c.close();
      fail(`teardown imap ${addr}: ${e}`);
    }
  }
}
