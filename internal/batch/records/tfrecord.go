package records

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tfRecordMaskDelta is added by TFRecord's checksum mask.
const tfRecordMaskDelta = 0xa282ead8

// MaskedCRC32C returns TFRecord's masked CRC32C of data:
// ((crc >> 15) | (crc << 17)) + 0xa282ead8.
func MaskedCRC32C(data []byte) uint32 {
	crc := crc32.Checksum(data, castagnoli)
	return (crc>>15 | crc<<17) + tfRecordMaskDelta
}

// AppendTFRecord appends rec to dst in TFRecord framing.
func AppendTFRecord(dst, rec []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(rec)))
	dst = binary.LittleEndian.AppendUint32(dst, MaskedCRC32C(dst[len(dst)-8:]))
	dst = append(dst, rec...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC32C(rec))
}

// tfRecordReader reads TFRecord framing and verifies both checksums.
type tfRecordReader struct {
	base
}

func (r *tfRecordReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	start := r.off
	hdr := r.hdr[:12]
	if err := r.readFull(hdr); err != nil {
		if err == io.EOF {
			r.err = io.EOF
			return nil, io.EOF
		}
		return nil, r.fail(start, truncated(err), "in the length header")
	}
	if got, want := MaskedCRC32C(hdr[:8]), binary.LittleEndian.Uint32(hdr[8:]); got != want {
		return nil, r.fail(start, ErrChecksum, fmt.Sprintf("length checksum 0x%08X, computed 0x%08X", want, got))
	}
	n := binary.LittleEndian.Uint64(hdr[:8])
	if n > uint64(r.max) {
		return nil, r.fail(start, ErrRecordTooLarge, fmt.Sprintf("length %d, limit %d", n, r.max))
	}
	var err error
	if r.buf, err = r.appendN(r.buf[:0], int(n)+4); err != nil {
		return nil, r.fail(start, truncated(err), fmt.Sprintf("in %d bytes of data and checksum", n+4))
	}
	rec := r.buf[:n]
	if got, want := MaskedCRC32C(rec), binary.LittleEndian.Uint32(r.buf[n:]); got != want {
		return nil, r.fail(start, ErrChecksum, fmt.Sprintf("data checksum 0x%08X, computed 0x%08X", want, got))
	}
	r.index++
	return rec, nil
}
