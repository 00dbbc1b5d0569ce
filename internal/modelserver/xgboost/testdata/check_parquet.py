#!/usr/bin/env python3
"""Reads an uncompressed, PLAIN-encoded rows.parquet by the Parquet format
specification alone (no Parquet library) and checks it holds exactly the
rows of rows.csv beside it: an independent check of the fixtures that
genparquet writes with parquet-go.

Usage: check_parquet.py CASE_DIR
"""
import os
import struct
import sys


class Compact:
    """Thrift compact protocol, enough for the Parquet footer and headers."""

    def __init__(self, b, off=0):
        self.b, self.off = b, off

    def byte(self):
        c = self.b[self.off]
        self.off += 1
        return c

    def uvarint(self):
        v = shift = 0
        while True:
            c = self.byte()
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v

    def zigzag(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def value(self, t):
        if t in (1, 2):
            return t == 1
        if t == 3:
            return self.byte()
        if t in (4, 5, 6):
            return self.zigzag()
        if t == 7:
            v = struct.unpack_from("<d", self.b, self.off)[0]
            self.off += 8
            return v
        if t == 8:
            n = self.uvarint()
            v = self.b[self.off:self.off + n]
            self.off += n
            return v
        if t in (9, 10):
            h = self.byte()
            n, et = h >> 4, h & 0x0F
            if n == 15:
                n = self.uvarint()
            return [self.byte() == 1 if et in (1, 2) else self.value(et) for _ in range(n)]
        if t == 12:
            return self.struct()
        raise ValueError("thrift type %d" % t)

    def struct(self):
        fields, last = {}, 0
        while True:
            h = self.byte()
            if h == 0:
                return fields
            fid = last + (h >> 4) if h >> 4 else self.zigzag()
            fields[fid] = self.value(h & 0x0F)
            last = fid


def rle_levels(b, off, n):
    """RLE/bit-packed hybrid, bit width 1, with its 4-byte length prefix."""
    length = struct.unpack_from("<I", b, off)[0]
    r, end, out = Compact(b, off + 4), off + 4 + length, []
    while len(out) < n:
        h = r.uvarint()
        if h & 1:
            for _ in range((h >> 1)):
                c = r.byte()
                out.extend((c >> i) & 1 for i in range(8))
        else:
            out.extend([r.byte()] * (h >> 1))
    return out[:n], end


def main(case):
    b = open(os.path.join(case, "rows.parquet"), "rb").read()
    assert b[:4] == b"PAR1" and b[-4:] == b"PAR1", "magic"
    flen = struct.unpack_from("<I", b, len(b) - 8)[0]
    fmd = Compact(b, len(b) - 8 - flen).struct()
    schema, num_rows, groups = fmd[2], fmd[3], fmd[4]
    ncols = schema[0][5]
    assert len(schema) == ncols + 1
    for el in schema[1:]:
        assert el[1] == 5 and el[3] == 1, "optional DOUBLE columns"  # DOUBLE, OPTIONAL
    cols = [[] for _ in range(ncols)]
    for rg in groups:
        for c, cc in enumerate(rg[1]):
            md = cc[3]
            assert md[4] == 0, "uncompressed"
            off, end = md[9], md[9] + md[7]
            while off < end:
                r = Compact(b, off)
                ph = r.struct()
                off = r.off + ph[3]
                assert ph[1] == 0, "data page v1"
                dph = ph[5]
                n, enc = dph[1], dph[2]
                assert enc == 0, "PLAIN"
                defs, p = rle_levels(b, r.off, n)
                for d in defs:
                    if d:
                        cols[c].append(struct.unpack_from("<d", b, p)[0])
                        p += 8
                    else:
                        cols[c].append(None)
                assert p == off, "page fully read"
    rows = [l.split(",") for l in open(os.path.join(case, "rows.csv")).read().strip().split("\n")]
    assert num_rows == len(rows) and all(len(col) == len(rows) for col in cols)
    for i, row in enumerate(rows):
        for c, f in enumerate(row):
            want = None if f == "" else float(f)
            assert cols[c][i] == want, "row %d column %d: %r != %r" % (i + 1, c + 1, cols[c][i], want)
    print("%s: %d rows x %d columns match rows.csv" % (case, len(rows), ncols))


if __name__ == "__main__":
    main(sys.argv[1])
