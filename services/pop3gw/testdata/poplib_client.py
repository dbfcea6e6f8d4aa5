"""Drives the POP3 gateway with Python's poplib and prints what it saw as
JSON (bodies as latin-1 strings) for the Go test to check.

usage: poplib_client.py HOST PORT USER PASSWORD
"""
import json
import poplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
p = poplib.POP3(host, port, timeout=10)
out["capa"] = sorted(p.capa().keys())
p.user(user)
p.pass_(password)
out["stat"] = list(p.stat())
resp, listing, _ = p.list()
out["list"] = [l.decode() for l in listing]
resp, uidls, _ = p.uidl()
out["uidl"] = [l.decode() for l in uidls]
out["retr"] = []
for n in range(1, out["stat"][0] + 1):
    resp, lines, octets = p.retr(n)
    out["retr"].append({"lines": [l.decode("latin-1") for l in lines], "octets": octets})
resp, lines, _ = p.top(1, 0)
out["top"] = [l.decode("latin-1") for l in lines]
p.dele(1)
out["quit"] = p.quit().decode()
print(json.dumps(out))
