package proxy

import (
	"strings"
	"testing"

	"github.com/ai-ninja/pgninja/parser"
)

// A query's text may be as large as a message may be; the session keeps
// it only while its request lasts.
func TestRequestEndDropsQueryText(t *testing.T) {
	for _, size := range []int{10, 1 << 20} {
		s := &Session{classifier: parser.NewClassifier(100, nil)}
		sql := "SELECT length('" + strings.Repeat("x", size) + "')"
		body := append([]byte(sql), 0)
		first := s.classifyQuery(body)
		if s.memoQuery != sql {
			t.Fatalf("size %d: the request's query is not remembered", size)
		}
		if again := s.classifyQuery(body); again != first {
			t.Errorf("size %d: the same request classified twice", size)
		}
		// As build leaves the batch it sent.
		s.out = append(s.out[:0], body...)
		s.batch.out = s.out
		s.resetRequest()
		if s.memoQuery != "" || s.memoClass != nil {
			t.Errorf("size %d: after the request the session still holds %d bytes of its text", size, len(s.memoQuery))
		}
		if size > keptBuffer && (s.out != nil || s.batch.out != nil) {
			t.Errorf("size %d: after the request the session keeps a %d-byte batch buffer", size, cap(s.out))
		}
		if size < keptBuffer && cap(s.out) == 0 {
			t.Errorf("size %d: a small batch buffer was not kept for the next request", size)
		}
	}
}
