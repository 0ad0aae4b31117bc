package tokenizer

import (
	"bufio"
	"compress/bzip2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

func TestNormalizationBasics(t *testing.T) {
	require.Equal(t, unicode.Version, ucdVersion, "regenerate unicode_tables.go with gen_tables.go for Go's Unicode version")
	for _, c := range []struct{ in, nfc, nfd string }{
		{"abc", "abc", "abc"},
		{"café", "café", "cafe\u0301"},
		{"e\u0301", "é", "e\u0301"},
		{"\u1100\u1161\u11a8", "각", "\u1100\u1161\u11a8"},
		{"각", "각", "\u1100\u1161\u11a8"},
		{"a\u0323\u0307", "ạ\u0307", "a\u0323\u0307"},
		{"a\u0307\u0323", "ạ\u0307", "a\u0323\u0307"},
		{"\u212b", "Å", "A\u030a"},                 // Angstrom sign: a singleton
		{"\u0344", "\u0308\u0301", "\u0308\u0301"}, // excluded from composition
	} {
		require.Equal(t, c.nfc, nfc(c.in), "NFC %q", c.in)
		require.Equal(t, c.nfd, nfd(c.in), "NFD %q", c.in)
	}
}

// TestNormalizationConformance runs Unicode's NormalizationTest.txt (from
// Debian's unicode-data package) if it is installed.
func TestNormalizationConformance(t *testing.T) {
	const path = "/usr/share/unicode/NormalizationTest.txt.bz2"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("%s not installed (apt-get install unicode-data)", path)
	}
	defer f.Close()
	sc := bufio.NewScanner(bzip2.NewReader(f))
	field := func(s string) string {
		var b strings.Builder
		for _, h := range strings.Fields(s) {
			v, err := strconv.ParseUint(h, 16, 32)
			require.NoError(t, err)
			b.WriteRune(rune(v))
		}
		return b.String()
	}
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line == "" || line[0] == '@' {
			continue
		}
		f := strings.Split(line, ";")
		if len(f) < 5 {
			continue
		}
		var c [5]string
		for i := range c {
			c[i] = field(f[i])
		}
		// NFC: c2 == toNFC(c1) == toNFC(c2) == toNFC(c3); c4 == toNFC(c4) == toNFC(c5).
		// NFD: c3 == toNFD(c1) == toNFD(c2) == toNFD(c3); c5 == toNFD(c4) == toNFD(c5).
		for i := 0; i < 3; i++ {
			if got := nfc(c[i]); got != c[1] {
				t.Fatalf("NFC(%+q) = %+q, want %+q (line %q)", c[i], got, c[1], line)
			}
			if got := nfd(c[i]); got != c[2] {
				t.Fatalf("NFD(%+q) = %+q, want %+q (line %q)", c[i], got, c[2], line)
			}
		}
		for i := 3; i < 5; i++ {
			if got := nfc(c[i]); got != c[3] {
				t.Fatalf("NFC(%+q) = %+q, want %+q", c[i], got, c[3])
			}
			if got := nfd(c[i]); got != c[4] {
				t.Fatalf("NFD(%+q) = %+q, want %+q", c[i], got, c[4])
			}
		}
		n++
	}
	require.NoError(t, sc.Err())
	require.Greater(t, n, 10000)
}
