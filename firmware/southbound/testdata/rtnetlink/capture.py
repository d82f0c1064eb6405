# Captures real route-netlink replies and notifications for tandem-southbound's nlmsg and
# link_monitor tests (the files were captured on x86_64, kernel 6.18). Run as root in a fresh
# network namespace holding a veth pair va/vb:
#   ip netns add cap && ip -n cap link add va type veth peer name vb
#   ip netns exec cap python3 capture.py OUTDIR
# Kept from the notifications: notify_0.bin (vb up, no carrier) as
# notify_newlink_up_no_carrier.bin, notify_2.bin (va up with carrier) as
# notify_newlink_up_carrier.bin, notify_6.bin (va deleted) as notify_dellink.bin.
import socket, struct, subprocess, sys, os
outdir = sys.argv[1]
def sock(groups=0):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    s.bind((0, groups))
    return s
def msg(kind, flags, seq, payload):
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload
def attr(kind, val):
    l = 4 + len(val)
    return struct.pack("=HH", l, kind) + val + b"\0" * ((4 - l % 4) % 4)
def save(name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)
def until_done(s):
    out = b""
    while True:
        b = s.recv(65536)
        out += b
        off = 0
        while off < len(b):
            l, t = struct.unpack_from("=IH", b, off)
            if t == 3:
                return out
            off += (l + 3) & ~3
IFINFO = struct.pack("=BBHiII", 0, 0, 0, 0, 0, 0)
s = sock()
s.send(msg(18, 1, 1, IFINFO + attr(3, b"lo\0")))
save("getlink_lo.bin", s.recv(65536))
s.send(msg(18, 1 | 0x300, 2, IFINFO))
save("dump_links.bin", until_done(s))
idx = socket.if_nametoindex("va")
def addaddr(seq):
    a = socket.inet_aton("192.0.2.1")
    p = struct.pack("=BBBBI", 2, 24, 0, 0, idx) + attr(1, a) + attr(2, a) + attr(4, socket.inet_aton("192.0.2.255"))
    s.send(msg(20, 1 | 4 | 0x200 | 0x400, seq, p))
    return s.recv(65536)
save("ack.bin", addaddr(3))
save("error_eexist.bin", addaddr(4))
s.send(msg(18, 1, 5, IFINFO + attr(3, b"nosuch\0")))
save("error_enodev.bin", s.recv(65536))
a6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
p = struct.pack("=BBBBI", 10, 64, 0, 0, idx) + attr(1, a6) + attr(2, a6) + attr(8, struct.pack("=I", 2))
s.send(msg(20, 1 | 4 | 0x200 | 0x400, 7, p))
s.recv(65536)
s.send(msg(22, 1 | 0x300, 8, struct.pack("=BBBBI", 0, 0, 0, 0, 0)))
save("dump_addresses.bin", until_done(s))
m = sock(1)
subprocess.run(["ip", "link", "set", "vb", "up"], check=True)
subprocess.run(["ip", "link", "set", "va", "up"], check=True)
subprocess.run(["ip", "link", "del", "va"], check=True)
m.settimeout(1)
n = []
try:
    while True:
        n.append(m.recv(65536))
except socket.timeout:
    pass
for i, b in enumerate(n):
    save("notify_%d.bin" % i, b)
