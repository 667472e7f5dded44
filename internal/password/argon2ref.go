package password

import (
	"encoding/binary"
	"math/bits"

	"golang.org/x/crypto/blake2b"
)

// A portable argon2 (RFC 9106) for the variants x/crypto/argon2 does not
// export: argon2d, and version 1.0 (0x10) of every type. Keycloak's
// Argon2PasswordHashProvider can be configured to write both, and an
// imported hash must verify as it is; gatehouse never writes them, so this
// code is only on the path of a legacy user's first login. It is checked in
// the tests against x/crypto (for id and i at 1.3) and against the argon2
// reference CLI (for d and 1.0).

// Argon2 types as they enter the initial hash and the address blocks.
const (
	argon2ModeD  = 0
	argon2ModeI  = 1
	argon2ModeID = 2
)

// argon2Mode maps an argon2 PHC identifier to its type number.
func argon2Mode(phc string) uint32 {
	switch phc {
	case phcArgon2i:
		return argon2ModeI
	case phcArgon2id:
		return argon2ModeID
	}
	return argon2ModeD
}

const (
	argon2SyncPoints = 4
	argon2BlockWords = 128 // 1 KiB blocks of 64-bit words
)

type argon2Block [argon2BlockWords]uint64

// argon2Ref derives keyLen bytes. Its arguments must satisfy decoded's
// validate: passes >= 1, lanes >= 1, memory >= 8*lanes.
func argon2Ref(mode, version uint32, password, salt []byte, passes, memory, lanes, keyLen uint32) []byte {
	var h0 [blake2b.Size + 8]byte
	h, _ := blake2b.New512(nil)
	var le [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(le[:], v)
		h.Write(le[:])
	}
	put(lanes)
	put(keyLen)
	put(memory)
	put(passes)
	put(version)
	put(mode)
	put(uint32(len(password)))
	h.Write(password)
	put(uint32(len(salt)))
	h.Write(salt)
	put(0) // no secret key
	put(0) // no associated data
	h.Sum(h0[:0])

	blocks := memory / (argon2SyncPoints * lanes) * (argon2SyncPoints * lanes)
	laneLen := blocks / lanes
	segLen := laneLen / argon2SyncPoints
	B := make([]argon2Block, blocks)

	var raw [8 * argon2BlockWords]byte
	for l := uint32(0); l < lanes; l++ {
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], l)
		for j := uint32(0); j < 2; j++ {
			binary.LittleEndian.PutUint32(h0[blake2b.Size:], j)
			argon2HPrime(raw[:], h0[:])
			b := &B[l*laneLen+j]
			for k := range b {
				b[k] = binary.LittleEndian.Uint64(raw[8*k:])
			}
		}
	}

	s := argon2State{mode: mode, version: version, passes: passes, blocks: blocks,
		lanes: lanes, laneLen: laneLen, segLen: segLen, B: B}
	for pass := uint32(0); pass < passes; pass++ {
		for slice := uint32(0); slice < argon2SyncPoints; slice++ {
			// Lanes within one slice never read each other's current
			// segment, so computing them one after another gives the
			// same result as computing them in parallel.
			for lane := uint32(0); lane < lanes; lane++ {
				s.fillSegment(pass, slice, lane)
			}
		}
	}

	final := B[laneLen-1]
	for l := uint32(1); l < lanes; l++ {
		last := &B[l*laneLen+laneLen-1]
		for k := range final {
			final[k] ^= last[k]
		}
	}
	for k, v := range final {
		binary.LittleEndian.PutUint64(raw[8*k:], v)
	}
	out := make([]byte, keyLen)
	argon2HPrime(out, raw[:])
	return out
}

type argon2State struct {
	mode, version, passes          uint32
	blocks, lanes, laneLen, segLen uint32
	B                              []argon2Block
}

func (s *argon2State) fillSegment(pass, slice, lane uint32) {
	independent := s.mode == argon2ModeI ||
		(s.mode == argon2ModeID && pass == 0 && slice < argon2SyncPoints/2)
	var addr, input, zero argon2Block
	if independent {
		input[0] = uint64(pass)
		input[1] = uint64(lane)
		input[2] = uint64(slice)
		input[3] = uint64(s.blocks)
		input[4] = uint64(s.passes)
		input[5] = uint64(s.mode)
	}
	nextAddresses := func() {
		input[6]++
		argon2Compress(&addr, &zero, &input, false)
		argon2Compress(&addr, &zero, &addr, false)
	}
	start := uint32(0)
	if pass == 0 && slice == 0 {
		start = 2 // blocks 0 and 1 come from the initial hash
		if independent {
			nextAddresses()
		}
	}
	for i := start; i < s.segLen; i++ {
		cur := lane*s.laneLen + slice*s.segLen + i
		prev := cur - 1
		if slice == 0 && i == 0 {
			prev = lane*s.laneLen + s.laneLen - 1
		}
		var r uint64
		if independent {
			if i%argon2BlockWords == 0 {
				nextAddresses()
			}
			r = addr[i%argon2BlockWords]
		} else {
			r = s.B[prev][0]
		}
		refLane := uint32((r >> 32) % uint64(s.lanes))
		if pass == 0 && slice == 0 {
			refLane = lane
		}
		ref := refLane*s.laneLen + s.indexAlpha(pass, slice, i, refLane == lane, r)
		// Version 1.3 XORs the new block into the old one on later
		// passes; version 1.0 overwrites it.
		xor := s.version == argon2Version13 && pass > 0
		argon2Compress(&s.B[cur], &s.B[prev], &s.B[ref], xor)
	}
}

// indexAlpha maps the pseudo-random r to a block of the reference lane
// (RFC 9106, section 3.4.1.2).
func (s *argon2State) indexAlpha(pass, slice, index uint32, sameLane bool, r uint64) uint32 {
	var area uint64
	switch {
	case pass == 0 && slice == 0:
		area = uint64(index) - 1
	case pass == 0 && sameLane:
		area = uint64(slice*s.segLen+index) - 1
	case pass == 0:
		area = uint64(slice * s.segLen)
		if index == 0 {
			area--
		}
	case sameLane:
		area = uint64(s.laneLen-s.segLen+index) - 1
	default:
		area = uint64(s.laneLen - s.segLen)
		if index == 0 {
			area--
		}
	}
	x := r & 0xffffffff
	x = x * x >> 32
	rel := area - 1 - (area * x >> 32)
	start := uint64(0)
	if pass != 0 && slice != argon2SyncPoints-1 {
		start = uint64((slice + 1) * s.segLen)
	}
	return uint32((start + rel) % uint64(s.laneLen))
}

// argon2Compress sets dst to G(x, y), or XORs G(x, y) into dst. dst may be
// x or y.
func argon2Compress(dst, x, y *argon2Block, xor bool) {
	var r, q argon2Block
	for k := range r {
		r[k] = x[k] ^ y[k]
	}
	q = r
	var idx [16]int
	for i := 0; i < 8; i++ {
		for k := range idx {
			idx[k] = 16*i + k
		}
		blamkaRound(&q, &idx)
	}
	for i := 0; i < 8; i++ {
		for k := 0; k < 8; k++ {
			idx[2*k] = 2*i + 16*k
			idx[2*k+1] = 2*i + 16*k + 1
		}
		blamkaRound(&q, &idx)
	}
	for k := range dst {
		if xor {
			dst[k] ^= q[k] ^ r[k]
		} else {
			dst[k] = q[k] ^ r[k]
		}
	}
}

// blamkaRound is BLAKE2b's round without message, with argon2's
// multiplication-hardened mixing, on the 16 words of b at idx.
func blamkaRound(b *argon2Block, idx *[16]int) {
	var v [16]uint64
	for k, i := range idx {
		v[k] = b[i]
	}
	blamkaG(&v[0], &v[4], &v[8], &v[12])
	blamkaG(&v[1], &v[5], &v[9], &v[13])
	blamkaG(&v[2], &v[6], &v[10], &v[14])
	blamkaG(&v[3], &v[7], &v[11], &v[15])
	blamkaG(&v[0], &v[5], &v[10], &v[15])
	blamkaG(&v[1], &v[6], &v[11], &v[12])
	blamkaG(&v[2], &v[7], &v[8], &v[13])
	blamkaG(&v[3], &v[4], &v[9], &v[14])
	for k, i := range idx {
		b[i] = v[k]
	}
}

func blamkaG(a, b, c, d *uint64) {
	mul := func(x, y uint64) uint64 { return 2 * (x & 0xffffffff) * (y & 0xffffffff) }
	*a += *b + mul(*a, *b)
	*d = bits.RotateLeft64(*d^*a, -32)
	*c += *d + mul(*c, *d)
	*b = bits.RotateLeft64(*b^*c, -24)
	*a += *b + mul(*a, *b)
	*d = bits.RotateLeft64(*d^*a, -16)
	*c += *d + mul(*c, *d)
	*b = bits.RotateLeft64(*b^*c, -63)
}

// argon2HPrime is argon2's variable-length hash H' (RFC 9106, section
// 3.3), filling out.
func argon2HPrime(out, in []byte) {
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil)
		h.Write(le[:])
		h.Write(in)
		h.Sum(out[:0])
		return
	}
	h, _ := blake2b.New512(nil)
	h.Write(le[:])
	h.Write(in)
	v := h.Sum(nil)
	copy(out, v[:32])
	pos, remaining := 32, len(out)-32
	for remaining > blake2b.Size {
		sum := blake2b.Sum512(v)
		v = sum[:]
		copy(out[pos:], v[:32])
		pos += 32
		remaining -= 32
	}
	h, _ = blake2b.New(remaining, nil)
	h.Write(v)
	h.Sum(out[pos:pos])
}
