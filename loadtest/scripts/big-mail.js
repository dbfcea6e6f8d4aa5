// Big-mail scenario: APPEND a large message (SIZE_MB, default 10 MB) and
// FETCH it back whole, then expunge it, so the blob path (gateway, blob
// service, S3) carries the load. The body is built once per VU, in the init
// context, not once per iteration.
//
// Environment: MAIL_IMAP (comma list), MAIL_USERS, MAIL_PASSWORD
// (required); DURATION (30s), VUS (2), SIZE_MB (10).
import mail from "k6/x/mail";
import { connOptions, list, need } from "./lib/options.js";
import { check, fail } from "k6";
import exec from "k6/execution";

const imapAddrs = list(need("MAIL_IMAP"));
const users = list(need("MAIL_USERS"));
const password = need("MAIL_PASSWORD");
const sizeMB = parseFloat(__ENV.SIZE_MB || "10");

export const options = {
  scenarios: {
    big: { executor: "constant-vus", vus: parseInt(__ENV.VUS || "2", 10), duration: __ENV.DURATION || "30s", gracefulStop: "60s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    mail_errors: ["count<1"],
    "mail_imap_command_duration{command:APPEND}": ["p(95)<5000"],
    "mail_imap_command_duration{command:UID FETCH}": ["p(95)<5000"],
    mail_bytes_sent: ["count>0"],
  },
};

// The message: headers and 76-character base64-looking lines up to the size.
const line = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJKL\r\n";
const header = [
  "From: big <big@loadtest.invalid>",
  "Subject: big-mail",
  "MIME-Version: 1.0",
  "Content-Type: application/octet-stream",
  "Content-Transfer-Encoding: base64",
  "",
  "",
].join("\r\n");
const body = header + line.repeat(Math.ceil((sizeMB * 1024 * 1024) / line.length));

export default function () {
  const vu = exec.vu.idInTest;
  const user = users[vu % users.length];
  const c = mail.imap.connect(imapAddrs[(vu + exec.vu.iterationInScenario) % imapAddrs.length], connOptions({ timeout: "120s" }));
  try {
    c.login(user, password);
    const box = `Big-${vu}`;
    if (!c.list("", box).some((m) => m.name === box)) {
      c.create(box);
    }
    const a = c.append(box, body);
    check(a, { "append gave a uid": (x) => x.uid > 0 });
    c.select(box);
    const m = c.fetch(String(a.uid), ["UID", "RFC822.SIZE", "BODY.PEEK[]"], { uid: true });
    check(m, { "fetched the whole message": (x) => x.length === 1 && x[0].sections["BODY.PEEK[]"].length === body.length });
    c.store(String(a.uid), "+FLAGS.SILENT", ["\\Deleted"], { uid: true });
    c.expunge();
    c.logout();
  } catch (e) {
    c.close();
    fail(`imap ${user}: ${e}`);
  }
}
