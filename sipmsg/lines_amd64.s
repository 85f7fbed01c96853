//go:build !purego

#include "textflag.h"

// The layout of header (kind, then the line, name and value spans) and of
// lineMarks; lines_test.go checks them against the Go types.
#define HDR_SIZE 56
#define HDR_KIND 0
#define HDR_LINE 8
#define HDR_NAME 24
#define HDR_VALUE 40
#define MARK_CONTACT 0
#define MARK_CL 16
#define MAX_HEADERS 96
#define KIND_UNKNOWN 0xff

// BROADCAST sets X to the byte of c in all sixteen lanes (through AX).
#define BROADCAST(c, X) MOVQ $c, AX; MOVQ AX, X; PUNPCKLQDQ X, X

// LFMASK sets R10 to the line feeds of b[CX:CX+64] as bits (through
// X0-X3, AX, DX, R11).
#define LFMASK \
	MOVOU 0(SI)(CX*1), X0; MOVOU 16(SI)(CX*1), X1; \
	MOVOU 32(SI)(CX*1), X2; MOVOU 48(SI)(CX*1), X3; \
	PCMPEQB X14, X0; PCMPEQB X14, X1; PCMPEQB X14, X2; PCMPEQB X14, X3; \
	PMOVMSKB X0, R10; PMOVMSKB X1, AX; PMOVMSKB X2, DX; PMOVMSKB X3, R11; \
	SHLQ $16, AX; SHLQ $32, DX; SHLQ $48, R11; \
	ORQ AX, R10; ORQ DX, R10; ORQ R11, R10

// SETMARK sets bit R8 (the header's index) in the word pair at off of
// marks (through AX, DX, R11).
#define SETMARK(off) \
	MOVQ marks+48(FP), R11; MOVQ R8, DX; SHRQ $6, DX; \
	MOVQ off(R11)(DX*8), AX; BTSQ R8, AX; MOVQ AX, off(R11)(DX*8)

// func fastLines(b []byte, pos int, hdrs *header, n int, marks *lineMarks) (int, int)
//
// SI: b, BX: len(b), DI: pos, the start of the current line, R8: n, R9:
// &hdrs[n]. The line feeds come from 64-byte blocks of b, as in
// internal/linefeed: R10 holds those of the block at CX not yet passed.
// Finding the next line's start this way depends on nothing of the current
// line but its line feed, so the processor works on several lines at once.
// Per line: R12 the line feed, R13 the name's length, DX its end, R11 the
// start of the value, AX its end.
TEXT ·fastLines(SB), NOSPLIT, $0-72
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), BX
	MOVQ pos+24(FP), DI
	MOVQ n+40(FP), R8
	IMUL3Q $HDR_SIZE, R8, R9
	ADDQ hdrs+32(FP), R9
	BROADCAST(0x2020202020202020, X8)  // the case bit
	BROADCAST(0x1f1f1f1f1f1f1f1f, X9)  // 'a'..'z' + 0x1f = 0x80..0x99
	BROADCAST(0x9a9a9a9a9a9a9a9a, X10) // signed: below it, a letter
	BROADCAST(0x2d2d2d2d2d2d2d2d, X13) // '-'
	BROADCAST(0x0a0a0a0a0a0a0a0a, X14) // '\n'

	// the block holding pos, its line feeds before pos dropped
	MOVQ DI, CX
	ANDQ $~63, CX
	LEAQ 64(CX), AX
	CMPQ AX, BX
	JA   done
	LFMASK
	MOVQ CX, DX
	MOVQ DI, CX
	ANDQ $63, CX
	MOVQ $-1, AX
	SHLQ CX, AX            // (by CL) the bits of pos and after
	MOVQ DX, CX
	ANDQ AX, R10

	PCALIGN $64
line:
	CMPQ R8, $MAX_HEADERS
	JAE  done
	LEAQ 32(DI), AX
	CMPQ AX, BX
	JA   done              // the name's 16 bytes and the value's first ones

	// the line feed: the next one in the blocks
	TESTQ R10, R10
	JNZ  found
block:
	ADDQ $64, CX
	LEAQ 64(CX), AX
	CMPQ AX, BX
	JA   done              // the last bytes of b: the Go loop
	LFMASK
	TESTQ R10, R10
	JZ   block
found:
	BSFQ R10, R12
	ADDQ CX, R12
	LEAQ -1(R10), AX
	ANDQ AX, R10

	// the name: the first byte of the 16 at DI that is not a letter or '-'
	// (names with digits or other token bytes are rare: the Go loop; so
	// are the empty line and a folded line, whose first byte ends the
	// name at once)
	MOVOU (SI)(DI*1), X0
	MOVO  X0, X1
	POR   X8, X1
	PADDB X9, X1
	MOVO  X10, X2
	PCMPGTB X1, X2         // X2: letters
	PCMPEQB X13, X0        // X0: '-'
	POR   X0, X2
	PMOVMSKB X2, AX
	NOTL  AX               // bit k: byte k ends the name (bits 16-31 are set)
	BSFL  AX, DX           // the name's length, 16 when it does not end here
	LEAQ  -1(DX), AX
	CMPL  AX, $14
	JA    done             // no name (the Go loop says why) or a long one
	MOVL  DX, R13          // the name's length, for the marks
	ADDQ  DI, DX
	CMPB  (SI)(DX*1), $':'
	JNE   done             // white space or another token byte before the colon

	// the value starts after the colon and at most one space
	LEAQ 1(DX), R11
	CMPB (SI)(R11*1), $0x20
	JNE  vstart
	INCQ R11
vstart:
	CMPB (SI)(R11*1), $0x20
	JBE  done              // an empty value or more white space

	// the value ends before the CR before the line feed; white space
	// before that is trimmed by the Go loop (AX-1 >= R11: the name, colon
	// and space hold no line feed, and b[R11] is neither CR nor LF)
	MOVQ R12, AX
	CMPB -1(SI)(AX*1), $0x0d
	JNE  vend
	DECQ AX
vend:
	CMPB -1(SI)(AX*1), $0x20
	JBE  done

	// hdrs[n] = {kindUnknown, line DI..R12+1, name DI..DX, value R11..AX}
	MOVB  $KIND_UNKNOWN, HDR_KIND(R9)
	MOVQ  DI, HDR_LINE(R9)
	LEAQ  1(R12), R12
	MOVQ  R12, HDR_LINE+8(R9)
	MOVQ  DI, HDR_NAME(R9)
	MOVQ  DX, HDR_NAME+8(R9)
	MOVQ  R11, HDR_VALUE(R9)
	MOVQ  AX, HDR_VALUE+8(R9)

	// marks: a name of 7 bytes with 'o' second or "m" may be Contact, one
	// of 14 or 1 byte Content-Length; other lengths (most) skip them with
	// one branch
	MOVL $(1<<1|1<<7|1<<14), AX
	BTL  R13, AX
	JCS  marks
next:
	INCQ R8
	ADDQ $HDR_SIZE, R9
	MOVQ R12, DI           // the next line starts after the line feed
	JMP  line

marks:
	CMPL R13, $7
	JEQ  seven
	CMPL R13, $14
	JEQ  cl
	MOVBLZX (SI)(DI*1), AX
	ORL  $0x20, AX
	CMPL AX, $'m'
	JNE  cl
	SETMARK(MARK_CONTACT)
cl:
	SETMARK(MARK_CL)
	JMP  next
seven:
	MOVBLZX 1(SI)(DI*1), AX
	ORL  $0x20, AX
	CMPL AX, $'o'
	JNE  next
	SETMARK(MARK_CONTACT)
	JMP  next

done:
	MOVQ R8, ret+56(FP)
	MOVQ DI, ret1+64(FP)
	RET
