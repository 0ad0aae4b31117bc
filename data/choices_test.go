package data

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseQuestions(t *testing.T) {
	qs, err := ParseQuestions(strings.NewReader(`{"question": "2+2?", "choices": ["3", "4"], "answer": 1}

{"question": "Capital of France?", "choices": ["Rome", "Paris", "Oslo"], "answer": "b", "subject": "geo"}
`), "q.jsonl")
	require.NoError(t, err)
	require.Len(t, qs, 2)
	require.Equal(t, 1, qs[0].Answer)
	require.Equal(t, 1, qs[1].Answer)
	require.Equal(t, 3, qs[1].Line)
	require.Equal(t, "geo", qs[1].Subject)

	for _, tc := range []struct{ in, want string }{
		{`{"question": "x", "choices": ["a", "b"], "answer": 2}`, `q.jsonl:1: "answer" 2 is not one of the 2 choices`},
		{`{"question": "x", "choices": ["a"], "answer": 0}`, `q.jsonl:1: "choices" needs at least 2`},
		{`{"choices": ["a", "b"], "answer": 0}`, `q.jsonl:1: missing "question"`},
		{`{"question": "x", "choices": ["a", "b"]}`, `q.jsonl:1: missing "answer"`},
		{`{"question": "x", "choices": ["a", "b"], "answer": "AB"}`, `q.jsonl:1: "answer" must be`},
		{`{"question": "x", "choices": ["a", "b"], "answer": 0, "hint": 1}`, `q.jsonl:1: invalid record`},
		{`{"question": "x",`, `q.jsonl:1: invalid record`},
		{``, `q.jsonl: no records`},
	} {
		_, err := ParseQuestions(strings.NewReader(tc.in), "q.jsonl")
		require.ErrorContains(t, err, tc.want, tc.in)
	}
}
