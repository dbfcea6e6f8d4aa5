"""Drives a POP3 server with Python's poplib, one step per argument, and
prints what each step answered as a JSON list (message lines as latin-1
strings) for the Go test to check.

usage: pop3_client.py HOST PORT USER PASSWORD STEP...
steps: stat, list, uidl, retr:N, top:N:LINES, dele:N, rset, quit, drop
(drop ends the process without QUIT, as a vanished client would).
A login refused by the server prints [{"login": "-ERR ..."}].
"""
import json
import poplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = []
p = poplib.POP3(host, port, timeout=30)
try:
    p.user(user)
    p.pass_(password)
except poplib.error_proto as e:
    print(json.dumps([{"login": e.args[0].decode()}]))
    sys.exit(0)


def lines(ls):
    return [l.decode("latin-1") for l in ls]


for step in sys.argv[5:]:
    name, *args = step.split(":")
    try:
        if name == "stat":
            out.append({"stat": list(p.stat())})
        elif name == "list":
            out.append({"list": lines(p.list()[1])})
        elif name == "uidl":
            out.append({"uidl": lines(p.uidl()[1])})
        elif name == "retr":
            resp, ls, octets = p.retr(int(args[0]))
            out.append({"retr": lines(ls), "resp": resp.decode()})
        elif name == "top":
            out.append({"top": lines(p.top(int(args[0]), int(args[1]))[1])})
        elif name == "dele":
            out.append({"dele": p.dele(int(args[0])).decode()})
        elif name == "rset":
            out.append({"rset": p.rset().decode()})
        elif name == "quit":
            out.append({"quit": p.quit().decode()})
        elif name == "drop":
            out.append({"drop": True})
            print(json.dumps(out))
            sys.stdout.flush()
            # Leave without QUIT: the socket closes with the process.
            import os
            os._exit(0)
        else:
            raise SystemExit("unknown step " + step)
    except poplib.error_proto as e:
        out.append({"err": e.args[0].decode()})
print(json.dumps(out))
