#!/usr/bin/env python3
"""Drive the LMTP gateway with Python's smtplib.LMTP (TestSmtplib).

Usage: smtplib_client.py HOST PORT FROM RCPT...

Sends one message with sendmail() to the first recipient, then one message
to all recipients with the low-level calls, reading the one reply per
accepted recipient that LMTP sends after DATA (smtplib's data() reads only
the first). Prints the replies as JSON.
"""
import json
import smtplib
import sys

host, port, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
out = {}
c = smtplib.LMTP(host, port)
code, msg = c.ehlo("python.test")  # LMTP sends LHLO
out["lhlo"] = [code, sorted(c.esmtp_features)]
refused = c.sendmail(sender, [rcpts[0]], b"Subject: one\r\n\r\n.leading dot\r\nbody\r\n")
out["sendmail_refused"] = refused

c.mail(sender)
accepted = []
out["rcpt"] = []
for r in rcpts:
    code, msg = c.rcpt(r)
    out["rcpt"].append(code)
    if code == 250:
        accepted.append(r)
replies = []
code, msg = c.data(b"Subject: two\r\n\r\nfor everyone\r\n")
replies.append([code, msg.decode()])
for _ in accepted[1:]:
    code, msg = c.getreply()
    replies.append([code, msg.decode()])
out["data"] = replies
out["quit"] = c.quit()[0]
print(json.dumps(out))
