"""Delivers one message with Python's smtplib.LMTP and prints, as JSON,
the reply to each RCPT and the one reply per accepted recipient that LMTP
sends after DATA (RFC 2033 section 4.2).

usage: lmtp_send.py HOST PORT FROM MESSAGE_FILE RCPT...
"""
import json
import smtplib
import sys

host, port, sender, path, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
with open(path, "rb") as f:
    msg = f.read()
c = smtplib.LMTP(host, port, timeout=60)
c.ehlo("python.test")
c.mail(sender)
out = {"rcpt": [], "data": []}
accepted = 0
for r in rcpts:
    code, _ = c.rcpt(r)
    out["rcpt"].append(code)
    if code == 250:
        accepted += 1
if accepted:
    code, text = c.data(msg)
    out["data"].append([code, text.decode()])
    for _ in range(accepted - 1):
        code, text = c.getreply()
        out["data"].append([code, text.decode()])
c.quit()
print(json.dumps(out))
