//go:build !purego

package sipmsg

// fastLines reads header lines from pos into hdrs[n:] while they have the
// usual form: a name of 1-15 letters and '-' right before the colon, at
// most one space before the value, no white space after it. It
// fills each header and marks its name in marks as scanHeaders's loop does,
// and returns the new header count and the start of the first line it did
// not read: one of another form (or the empty line), one within 32 bytes of
// the end of b or whose line feed is in b's last, partial 64-byte block, or
// the line after MaxHeaders. b[pos] starts a line and n <= MaxHeaders.
//
// It is SSE2 (lines_amd64.s): sixteen bytes of the name are classified at
// once, and the line feeds come from 64-byte block masks as in
// internal/linefeed, so that where the next line starts depends only on
// the current line's line feed and the processor reads several lines at
// once. About 80 instructions a line where the Go loop takes about 190;
// Parse of the 889-byte benchmark INVITE went from 198 to 116 ns (a
// version that searched each line feed from the value, the next line
// waiting on the current one, took as long as the Go loop).
//
//go:noescape
func fastLines(b []byte, pos int, hdrs *header, n int, marks *lineMarks) (int, int)
