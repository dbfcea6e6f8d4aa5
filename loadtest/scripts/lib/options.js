// What the scenarios share: their settings from the environment, and the
// connection options.
//
// Connection options, from the environment:
// MAIL_TLS is "none" (the default: plaintext, as on the local stack of
// scripts/loadtest.sh), "starttls", or "tls" (implicit TLS: give the IMAPS
// and POP3S ports). k6's --insecure-skip-tls-verify accepts a private CA.
// A bad value stops the script at once, in the init context.
const modes = {
  none: { tls: false, starttls: false },
  starttls: { tls: false, starttls: true },
  tls: { tls: true, starttls: false },
};
const mode = (__ENV.MAIL_TLS || "none").toLowerCase();
if (!modes[mode]) {
  throw new Error(`MAIL_TLS=${mode}: want none, starttls or tls`);
}

// connOptions returns the options for mail.imap.connect and
// mail.pop3.connect: extra (e.g. a timeout) with the TLS mode.
export function connOptions(extra) {
  return Object.assign({}, extra || {}, modes[mode]);
}

// need returns the environment variable name, or stops the script.
export function need(name) {
  const v = __ENV[name];
  if (!v) {
    throw new Error(`set ${name}`);
  }
  return v;
}

// list splits a comma-separated list, dropping empty items.
export function list(s) {
  return s.split(",").map((x) => x.trim()).filter((x) => x);
}
