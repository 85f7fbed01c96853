package sdp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzOptions derives rewrite options from one fuzzed byte.
func fuzzOptions(sel uint8, port uint16) *Options {
	o := &Options{Public: labPublic}
	if sel&1 != 0 {
		o.Public = v6Public
	}
	o.Origin = sel&2 != 0
	o.All = sel&4 != 0
	o.AllowICE = sel&8 != 0
	if sel&16 != 0 {
		o.Marker = "a=nortpproxy:yes"
	}
	if sel&32 != 0 {
		o.Ports = []PortMap{{port, port + 1000}, {port + 1, port + 5}, {4000, 4002}, {4001, 9}}
	}
	return o
}

// addGoldenSeeds adds every golden body as a seed (body, sel, port) once
// per option selector in sels.
func addGoldenSeeds(f *testing.F, sels ...uint8) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.sdp"))
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			continue
		}
		for _, sel := range sels {
			f.Add(b, sel, uint16(10008))
		}
	}
}

// FuzzAppendRewrite checks the byte path on arbitrary input: no panic; on
// success the caller's prefix is kept, the output is a fixed point, and
// every line it does not own (o=, c=, m=, a=rtcp, the marker) is copied as
// received. Package sdppion's FuzzRewriteSession holds it to the pion door.
func FuzzAppendRewrite(f *testing.F) {
	addGoldenSeeds(f, 0x3f)
	f.Fuzz(func(t *testing.T, in []byte, sel uint8, port uint16) {
		opts := fuzzOptions(sel, port)
		prefix := []byte("pre")
		out, res, err := AppendRewrite(append([]byte(nil), prefix...), in, opts)
		chk, cerr := Check(in)
		if (cerr == nil) != (err == nil || errors.Is(err, ErrBadOptions)) {
			t.Fatalf("Check error %v, AppendRewrite error %v", cerr, err)
		}
		if err == nil && !slices.Equal(slices.Collect(chk.Findings()), slices.Collect(res.Findings())) {
			t.Fatalf("Check and AppendRewrite disagree:\n%v\n%v", chk, res)
		}
		if err != nil {
			if !bytes.Equal(out, prefix) {
				t.Fatalf("dst changed on error %v", err)
			}
			return
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatal("prefix lost")
		}
		out = out[len(prefix):]
		if res.Changed() == bytes.Equal(in, out) && res.Edits > 0 {
			t.Fatalf("Edits=%d but output equal=%v", res.Edits, bytes.Equal(in, out))
		}
		again, res2, err := AppendRewrite(nil, out, opts)
		if err != nil || !bytes.Equal(again, out) || res2.Edits != 0 {
			t.Fatalf("not idempotent: err=%v edits=%d\nout:   %q\nagain: %q", err, res2.Edits, out, again)
		}
		if a, b := otherLines(in, opts.Marker), otherLines(out, opts.Marker); !bytes.Equal(a, b) {
			t.Fatalf("bytes outside rewritten lines changed:\n%q\n%q", a, b)
		}

	})
}

// otherLines returns the lines of b (with their endings) that the rewrite
// does not own, concatenated.
func otherLines(b []byte, marker string) []byte {
	var out []byte
	for i := 0; i < len(b); {
		ln := nextLine(b, i)
		i = ln.next
		l := b[ln.start:ln.end]
		switch k := kind(l); {
		case k == 'o' || k == 'c' || k == 'm':
			continue
		case k == 'a' && bytes.Equal(attrKey(l[2:]), keyRTCP):
			continue
		case marker != "" && string(l) == marker:
			continue
		}
		out = append(out, b[ln.start:ln.next]...)
	}
	// A line added after a last line without ending gives that line one.
	return bytes.TrimRight(out, "\r\n")
}

func TestFuzzOptionsValid(t *testing.T) {
	t.Parallel()
	for sel := 0; sel < 64; sel++ {
		if _, err := fuzzOptions(uint8(sel), 1).check(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzWalkFilter holds the walk's filter (which lines run skips without
// calling line) to the walk without it: every line through line. Both give
// the same output and the same Result, for every option set.
func FuzzWalkFilter(f *testing.F) {
	addGoldenSeeds(f, 0x3f, 0x1a)
	f.Fuzz(func(t *testing.T, in []byte, sel uint8, port uint16) {
		opts := fuzzOptions(sel, port)
		out, res, err := AppendRewrite(nil, in, opts)
		pub, oerr := opts.check()
		if oerr != nil || checkBody(in) != nil {
			return
		}
		var w rewriter
		w.dst, w.body, w.pub, w.ports, w.marker = nil, in, pub, opts.Ports, opts.Marker
		w.origin, w.all, w.allowICE, w.nat64 = opts.Origin, opts.All, opts.AllowICE, opts.NAT64
		rerr := w.everyLine()
		if (err == nil) != (rerr == nil) {
			t.Fatalf("filtered walk error %v, unfiltered %v", err, rerr)
		}
		if err != nil {
			return
		}
		w.res.Edits = w.edits
		if !bytes.Equal(out, w.dst) || res != w.res {
			t.Fatalf("filtered walk:\n%q\n%v\nunfiltered:\n%q\n%v", out, res, w.dst, w.res)
		}
	})
}

// everyLine is run without its filter.
func (w *rewriter) everyLine() error {
	w.start()
	b := w.body
	for p := 0; p < len(b); {
		e := len(b)
		if i := bytes.IndexByte(b[p:], '\n'); i >= 0 {
			e = p + i
		}
		w.walk.lineNo++
		if err := w.line(p, e); err != nil {
			return err
		}
		p = e + 1
	}
	return w.finish()
}
