package sandbox

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// randSource is a seedable random source shared by every goroutine of a Server. One seed reproduces the same
// ids, hashes and fault rolls as long as requests arrive in the same order.
type randSource struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRandSource(seed int64) *randSource {
	return &randSource{r: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))}
}

func (s *randSource) float64() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Float64()
}

func (s *randSource) intN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.IntN(n)
}

func (s *randSource) int64N(n int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Int64N(n)
}

func (s *randSource) fill(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(b); i += 8 {
		v := s.r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// uuid returns a version 4 UUID drawn from the seeded source.
func (s *randSource) uuid() string {
	var b [16]byte
	s.fill(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// hex0x returns "0x" followed by n lowercase hex digits (n even): 40 for an address, 64 for a tx hash.
func (s *randSource) hex0x(n int) string {
	b := make([]byte, n/2)
	s.fill(b)
	return "0x" + hex.EncodeToString(b)
}

// hexN returns n lowercase hex digits (n even), e.g. the 32-hex OAuth code.
func (s *randSource) hexN(n int) string {
	b := make([]byte, n/2)
	s.fill(b)
	return hex.EncodeToString(b)
}

// snowflakeEpoch is Twitter's snowflake epoch; with it, ids minted today have 19 digits like the guide's
// "1986315238040416258".
const snowflakeEpoch = 1288834974657

// snowflake mints strictly increasing, snowflake-like numeric ids (ms timestamp << 22 | sequence).
type snowflake struct {
	mu   sync.Mutex
	last int64
}

func (g *snowflake) next(now time.Time) string {
	v := (now.UnixMilli() - snowflakeEpoch) << 22
	g.mu.Lock()
	if v <= g.last {
		v = g.last + 1
	}
	g.last = v
	g.mu.Unlock()
	return strconv.FormatInt(v, 10)
}

func msString(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
